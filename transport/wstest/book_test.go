package wstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/transport/wstest"
)

// bookMsg reads one book notification's type, change_id and prev_change_id.
func bookMsg(t *testing.T, r *clientReader) (typ string, id, prev float64) {
	t.Helper()
	for {
		m := r.nextJSON(t)
		if m["method"] != "subscription" {
			continue // the subscribe's answer
		}
		d := m["params"].(map[string]any)["data"].(map[string]any)
		p, _ := d["prev_change_id"].(float64)
		return d["type"].(string), d["change_id"].(float64), p
	}
}

// One book served by two servers: a connection to each sees a snapshot and
// then the same changes, each naming the one before; Lose makes one
// connection miss a change, Mute stops the book on it.
func TestBookOnTwoServers(t *testing.T) {
	const ch = "book.BTC-PERPETUAL.100ms"
	book := wstest.NewBook(ch, 2*time.Millisecond)
	defer book.Close()
	var readers []*clientReader
	var conns []*wstest.Conn
	for range 2 {
		srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithBook(book))
		defer srv.Close()
		c := dial(t, srv, "/", nil)
		r := startReader(t, c)
		if err := c.Write(context.Background(), websocket.MessageText,
			[]byte(`{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["`+ch+`"]}}`)); err != nil {
			t.Fatal(err)
		}
		cs, err := srv.WaitConns(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		readers, conns = append(readers, r), append(conns, cs[0])
	}
	for i, r := range readers {
		typ, id, _ := bookMsg(t, r)
		if typ != "snapshot" {
			t.Fatalf("connection %d: first %s %v, want the snapshot", i, typ, id)
		}
		last := id
		for range 20 {
			typ, id, prev := bookMsg(t, r)
			if typ != "change" || prev != last && id > last {
				t.Fatalf("connection %d: %s %v<-%v after %v", i, typ, id, prev, last)
			}
			last = max(last, id)
		}
	}
	_, last, _ := bookMsg(t, readers[0])
	book.Lose(conns[0], 1)
	lost := false
	for range 100 {
		_, id, prev := bookMsg(t, readers[0])
		if prev != last {
			lost = true
			break
		}
		last = id
	}
	if !lost {
		t.Fatal("Lose lost nothing")
	}
	before := book.Sent()
	book.Mute(conns[1], true)
	book.Mute(conns[0], true)
	time.Sleep(50 * time.Millisecond)
	if after := book.Sent(); after > before+4 { // a round in flight when muted
		t.Fatalf("muted, the book still sent %d messages", after-before)
	}
}
