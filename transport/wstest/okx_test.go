package wstest_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/transport/wstest"
)

const (
	okxKey        = "key-1"
	okxSecret     = "okx-secret"
	okxPassphrase = "pass-1"
)

// okxLoginReq is an OKX login request signed with secret at ts.
func okxLoginReq(id, key, secret, pass string, ts int64) string {
	s := strconv.FormatInt(ts, 10)
	return fmt.Sprintf(`{"id":%q,"op":"login","args":[{"apiKey":%q,"passphrase":%q,"timestamp":%q,"sign":%q}]}`,
		id, key, pass, s, wstest.OKXSign(secret, s))
}

// okxDial connects to an OKX-mode server and returns the client, its
// reader and the server side of the connection.
func okxDial(t *testing.T, srv *wstest.Server) (*websocket.Conn, *clientReader, *wstest.Conn) {
	t.Helper()
	n := srv.TotalConns()
	c := dial(t, srv, "/ws/v5/public", nil)
	r := startReader(t, c)
	if err := srv.WaitTotalConns(testCtx(t, 5*time.Second), n+1); err != nil {
		t.Fatal(err)
	}
	conns := srv.Conns()
	return c, r, conns[len(conns)-1]
}

// okxWant sends req and checks the next message is exactly want, with
// CONN replaced by the connection's connId.
func okxWant(t *testing.T, c *websocket.Conn, r *clientReader, sc *wstest.Conn, req string, want ...string) {
	t.Helper()
	write(t, c, websocket.MessageText, req)
	for _, w := range want {
		w = strings.ReplaceAll(w, "CONN", sc.OKXConnID())
		if got := r.nextMsg(t); string(got.data) != w {
			t.Fatalf("%s:\n got %s\nwant %s", req, got.data, w)
		}
	}
}

func TestOKXPingPong(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKX())
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	for range 3 {
		okxWant(t, c, r, sc, "ping", "pong")
	}
	if sc.OKXPings() != 3 || srv.OKXPings() != 3 {
		t.Fatalf("pings: conn %d, server %d", sc.OKXPings(), srv.OKXPings())
	}
	if len(sc.OKXConnID()) != 8 {
		t.Fatalf("connId %q", sc.OKXConnID())
	}
}

func TestOKXLogin(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKXCredentials(okxKey, okxSecret, okxPassphrase))
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	now := time.Now().Unix()
	okxWant(t, c, r, sc, okxLoginReq("a1", okxKey, "wrong-secret", okxPassphrase, now),
		`{"id":"a1","event":"error","code":"60009","msg":"Login failed.","connId":"CONN"}`)
	okxWant(t, c, r, sc, okxLoginReq("a2", "other-key", okxSecret, okxPassphrase, now),
		`{"id":"a2","event":"error","code":"60009","msg":"Login failed.","connId":"CONN"}`)
	okxWant(t, c, r, sc, okxLoginReq("a3", okxKey, okxSecret, "other-pass", now),
		`{"id":"a3","event":"error","code":"60009","msg":"Login failed.","connId":"CONN"}`)
	okxWant(t, c, r, sc, okxLoginReq("a4", okxKey, okxSecret, okxPassphrase, now-31),
		`{"id":"a4","event":"error","code":"60006","msg":"Timestamp request expired","connId":"CONN"}`)
	okxWant(t, c, r, sc, okxLoginReq("a5", okxKey, okxSecret, okxPassphrase, now+40),
		`{"id":"a5","event":"error","code":"60006","msg":"Timestamp request expired","connId":"CONN"}`)
	if sc.OKXLoggedIn() || srv.OKXLogins() != 0 {
		t.Fatal("logged in after failed logins")
	}
	okxWant(t, c, r, sc, okxLoginReq("a6", okxKey, okxSecret, okxPassphrase, now),
		`{"id":"a6","event":"login","code":"0","msg":"","connId":"CONN"}`)
	// Without an id, the answer has none.
	req := strings.Replace(okxLoginReq("x", okxKey, okxSecret, okxPassphrase, now), `"id":"x",`, "", 1)
	okxWant(t, c, r, sc, req, `{"event":"login","code":"0","msg":"","connId":"CONN"}`)
	if !sc.OKXLoggedIn() || sc.OKXLogins() != 2 || srv.OKXLogins() != 2 {
		t.Fatalf("logged in %v, logins %d/%d", sc.OKXLoggedIn(), sc.OKXLogins(), srv.OKXLogins())
	}
	// A known answer, computed independently (Python's hmac).
	if got := wstest.OKXSign("secret", "1538054050"); got != "Gj2hQIVKFcXbiwCak8SmVOu5mxPCizWDdmUAhbx8Z+s=" {
		t.Fatalf("OKXSign = %s", got)
	}
}

func TestOKXLoginWithoutCredentials(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKX())
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	okxWant(t, c, r, sc, okxLoginReq("1", "any", "any", "any", time.Now().Unix()),
		`{"id":"1","event":"login","code":"0","msg":"","connId":"CONN"}`)
}

func TestOKXSubscribe(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKXCredentials(okxKey, okxSecret, okxPassphrase))
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	okxWant(t, c, r, sc,
		`{"id":"s1","op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},{"channel":"nope","instId":"BTC-USDT"},{"channel":"orders"},{"channel":"books5","instId":"ETH-USDT"},{"channel":"trades"}]}`,
		`{"id":"s1","event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"CONN"}`,
		`{"id":"s1","event":"error","code":"60018","msg":"Wrong URL or channel:nope,instId:BTC-USDT doesn't exist.","connId":"CONN"}`,
		`{"id":"s1","event":"error","code":"60011","msg":"Please log in","connId":"CONN"}`,
		`{"id":"s1","event":"subscribe","arg":{"channel":"books5","instId":"ETH-USDT"},"connId":"CONN"}`,
		`{"id":"s1","event":"error","code":"60018","msg":"Wrong URL or channel:trades,instId: doesn't exist.","connId":"CONN"}`)
	want := []wstest.OKXArg{{Channel: "books5", InstID: "ETH-USDT"}, {Channel: "tickers", InstID: "BTC-USDT"}}
	if got := sc.OKXChannels(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("OKXChannels = %v", got)
	}
	if n := srv.PublishOKX("tickers", "BTC-USDT", map[string]string{"last": "1"}); n != 1 {
		t.Fatalf("PublishOKX reached %d", n)
	}
	if got := r.nextMsg(t); string(got.data) != `{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1"}]}` {
		t.Fatalf("push %s", got.data)
	}
	if n := srv.PublishOKX("tickers", "ETH-USDT", 1); n != 0 {
		t.Fatalf("PublishOKX to nobody reached %d", n)
	}
	// After login the private channels work, with or without instId.
	okxWant(t, c, r, sc, okxLoginReq("l", okxKey, okxSecret, okxPassphrase, time.Now().Unix()),
		`{"id":"l","event":"login","code":"0","msg":"","connId":"CONN"}`)
	okxWant(t, c, r, sc, `{"op":"subscribe","args":[{"channel":"orders"},{"channel":"positions","instId":"BTC-USDT-SWAP"},{"channel":"account"}]}`,
		`{"event":"subscribe","arg":{"channel":"orders"},"connId":"CONN"}`,
		`{"event":"subscribe","arg":{"channel":"positions","instId":"BTC-USDT-SWAP"},"connId":"CONN"}`,
		`{"event":"subscribe","arg":{"channel":"account"},"connId":"CONN"}`)
	if !sc.OKXSubscribed("orders", "") || srv.PublishOKX("orders", "") != 1 {
		t.Fatal("orders not subscribed")
	}
	if got := r.nextMsg(t); string(got.data) != `{"arg":{"channel":"orders"},"data":[]}` {
		t.Fatalf("push %s", got.data)
	}
	okxWant(t, c, r, sc, `{"id":"u1","op":"unsubscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},{"channel":"bad"}]}`,
		`{"id":"u1","event":"unsubscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"CONN"}`,
		`{"id":"u1","event":"error","code":"60018","msg":"Wrong URL or channel:bad,instId: doesn't exist.","connId":"CONN"}`)
	if sc.OKXSubscribed("tickers", "BTC-USDT") || srv.PublishOKX("tickers", "BTC-USDT", 1) != 0 {
		t.Fatal("still subscribed after unsubscribe")
	}
}

func TestOKXInvalidRequests(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKX())
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	invalid := `{"event":"error","code":"60012","msg":"Invalid request","connId":"CONN"}`
	for _, req := range []string{
		"hello", "PING", `{"foo":1}`, `[1,2]`,
		`{"id":"","op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}`,
		`{"id":"has-dash","op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}`,
		`{"id":"` + strings.Repeat("a", 33) + `","op":"subscribe","args":[]}`,
		`{"id":7,"op":"subscribe","args":[]}`,
	} {
		okxWant(t, c, r, sc, req, invalid)
	}
	okxWant(t, c, r, sc, `{"id":"`+strings.Repeat("a", 32)+`","op":"order","args":[]}`,
		`{"id":"`+strings.Repeat("a", 32)+`","event":"error","code":"60012","msg":"Invalid request","connId":"CONN"}`)
	okxWant(t, c, r, sc, `{"id":"b2","op":"subscribe","args":[]}`,
		`{"id":"b2","event":"error","code":"60012","msg":"Invalid request","connId":"CONN"}`)
	okxWant(t, c, r, sc, `{"id":"b3","op":"login","args":[{"apiKey":"k"}]}`,
		`{"id":"b3","event":"error","code":"60012","msg":"Invalid request","connId":"CONN"}`)
	write(t, c, websocket.MessageBinary, "ping")
	if got := r.nextMsg(t); string(got.data) != strings.ReplaceAll(invalid, "CONN", sc.OKXConnID()) {
		t.Fatalf("binary: %s", got.data)
	}
	// The connection is still usable.
	okxWant(t, c, r, sc, "ping", "pong")
}

func TestOKXRequestLimit(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKXRequestLimit(3, time.Second))
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	sub := func(id string) string {
		return `{"id":"` + id + `","op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}`
	}
	ok := func(id string) string {
		return `{"id":"` + id + `","event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"CONN"}`
	}
	start := time.Now()
	okxWant(t, c, r, sc, sub("r1"), ok("r1"))
	okxWant(t, c, r, sc, okxLoginReq("r2", "k", "s", "p", time.Now().Unix()), `{"id":"r2","event":"login","code":"0","msg":"","connId":"CONN"}`)
	okxWant(t, c, r, sc, `{"id":"r3","op":"unsubscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}`,
		`{"id":"r3","event":"unsubscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"CONN"}`)
	for _, id := range []string{"r4", "r5"} {
		okxWant(t, c, r, sc, sub(id), `{"id":"`+id+`","event":"error","code":"60014","msg":"Requests too frequent.","connId":"CONN"}`)
	}
	// Pings and other messages are not limited.
	okxWant(t, c, r, sc, "ping", "pong")
	if time.Since(start) >= time.Second {
		t.Skip("too slow a machine to check the window")
	}
	if srv.OKXRateLimited() != 2 || srv.ConnCount() != 1 {
		t.Fatalf("rate limited %d, conns %d", srv.OKXRateLimited(), srv.ConnCount())
	}
	// The limit is per connection.
	c2, r2, sc2 := okxDial(t, srv)
	okxWant(t, c2, r2, sc2, sub("q1"), ok("q1"))
	// The window slides: refused requests were not counted.
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	okxWant(t, c, r, sc, sub("r6"), ok("r6"))
}

func TestOKXIdleClose(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKX(), wstest.WithOKXIdle(300*time.Millisecond))
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	// Pings every 100 ms keep the connection for a second.
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		okxWant(t, c, r, sc, "ping", "pong")
	}
	start := time.Now()
	err := waitClosed(t, r)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != wstest.OKXIdleCloseCode || ce.Reason != wstest.OKXIdleReason {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("closed after %v of silence", d)
	}
	<-sc.Done()
	if !sc.OKXIdleClosed() || srv.OKXIdleCloses() != 1 {
		t.Fatalf("idle closed %v, %d", sc.OKXIdleClosed(), srv.OKXIdleCloses())
	}
	if code, reason := sc.CloseReason(); code != 4004 || reason != "no data in 30s" {
		t.Fatalf("CloseReason %d %q", code, reason)
	}
}

// A stalled connection is not timed out (it cannot hear the client); after
// Resume the idle limit applies again.
func TestOKXIdleNotWhileStalled(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKXIdle(150 * time.Millisecond))
	defer srv.Close()
	_, r, sc := okxDial(t, srv)
	sc.Stall()
	time.Sleep(500 * time.Millisecond)
	select {
	case <-sc.Done():
		t.Fatal("a stalled connection was timed out")
	default:
	}
	sc.Resume()
	err := waitClosed(t, r)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != wstest.OKXIdleCloseCode {
		t.Fatalf("close after Resume: %v", err)
	}
}

func TestOKXWaitSubscribed(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKX())
	defer srv.Close()
	c, r, sc := okxDial(t, srv)
	want := []wstest.OKXArg{{Channel: "bbo-tbt", InstID: "BTC-USDT"}, {Channel: "candle1m", InstID: "BTC-USDT"}}
	errc := make(chan error, 1)
	go func() { errc <- sc.WaitOKXSubscribed(testCtx(t, 5*time.Second), want...) }()
	write(t, c, websocket.MessageText, `{"op":"subscribe","args":[{"channel":"bbo-tbt","instId":"BTC-USDT"},{"channel":"candle1m","instId":"BTC-USDT"}]}`)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r.nextMsg(t)
	r.nextMsg(t)
	if err := sc.WaitOKXSubscribed(testCtx(t, 50*time.Millisecond), wstest.OKXArg{Channel: "books", InstID: "X"}); err == nil {
		t.Fatal("WaitOKXSubscribed for a missing subscription succeeded")
	}
}
