package wstest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/transport/wstest"
)

// The Binance simulator holds at most 1,024 streams a connection, answers
// "result":null, publishes combined-stream events to the subscribed
// connections only, and counts what a connection sent in any second.
func TestBinanceSimulator(t *testing.T) {
	srv := wstest.NewServer(wstest.WithBinance())
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)
	streams := func(from, n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("s%d@trade", from+i)
		}
		b, _ := json.Marshal(s)
		return string(b)
	}
	for i := range 5 {
		m := rpc(t, c, r, fmt.Sprintf(`{"method":"SUBSCRIBE","params":%s,"id":%d}`, streams(i*200, 200), i+1))
		if _, ok := m["result"]; !ok || m["result"] != nil {
			t.Fatalf("SUBSCRIBE %d: %v", i+1, m)
		}
	}
	m := rpc(t, c, r, `{"method":"SUBSCRIBE","params":`+streams(1000, 25)+`,"id":6}`) // 1,025
	if e, _ := m["error"].(map[string]any); e == nil || e["code"] != float64(wstest.CodeTooManyStreams) {
		t.Fatalf("past 1,024 streams: %v", m)
	}
	if n := len(sc.Channels()); n != 1000 {
		t.Fatalf("%d streams held, want 1000", n)
	}
	rpc(t, c, r, `{"method":"UNSUBSCRIBE","params":["s0@trade"],"id":7}`)
	if sc.Subscribed("s0@trade") || srv.PublishStream("s0@trade", 1) != 0 {
		t.Fatal("UNSUBSCRIBE kept the stream")
	}
	if n := srv.PublishStream("s1@trade", map[string]int{"u": 1}); n != 1 {
		t.Fatalf("published to %d connections", n)
	}
	got := r.nextMsg(t)
	if got.typ != websocket.MessageText || string(got.data) != `{"stream":"s1@trade","data":{"u":1}}` {
		t.Fatalf("event %s", got.data)
	}
	if n := sc.MaxInSecond(); n != 7 {
		t.Fatalf("MaxInSecond %d, want 7 (all sent within a second)", n)
	}
	time.Sleep(1100 * time.Millisecond)
	write(t, c, websocket.MessageText, `{"method":"UNSUBSCRIBE","params":["s2@trade"],"id":8}`)
	if m := r.nextJSON(t); !strings.Contains(fmt.Sprint(m), "id:8") {
		t.Fatalf("answer %v", m)
	}
	if n := sc.MaxInSecond(); n != 7 {
		t.Fatalf("MaxInSecond %d after a pause, want 7", n)
	}
}
