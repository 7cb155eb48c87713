package wstest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/zenws/zenws/internal/testutil"

	"github.com/zenws/zenws/transport/wstest"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m)
}

// --- helpers ---------------------------------------------------------------

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, srv *wstest.Server, path string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	if opts == nil {
		opts = srv.DialOptions()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.TrimSuffix(srv.URL(), "/")+path, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

type readResult struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

// clientReader reads from a client connection in the background (which also
// makes the client answer pings and close frames).
type clientReader struct {
	c    *websocket.Conn
	ch   chan readResult
	stop chan struct{}
	done chan struct{}
}

func startReader(t *testing.T, c *websocket.Conn) *clientReader {
	t.Helper()
	r := &clientReader{c: c, ch: make(chan readResult), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			typ, data, err := c.Read(context.Background())
			select {
			case r.ch <- readResult{typ, data, err}:
			case <-r.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.CloseNow()
		close(r.stop)
		<-r.done
	})
	return r
}

func (r *clientReader) next(t *testing.T, timeout time.Duration) readResult {
	t.Helper()
	select {
	case res := <-r.ch:
		return res
	case <-time.After(timeout):
		t.Fatalf("no message from server within %v", timeout)
		return readResult{}
	}
}

func (r *clientReader) nextMsg(t *testing.T) readResult {
	t.Helper()
	res := r.next(t, 5*time.Second)
	if res.err != nil {
		t.Fatalf("client read: %v", res.err)
	}
	return res
}

func (r *clientReader) nextJSON(t *testing.T) map[string]any {
	t.Helper()
	res := r.nextMsg(t)
	var m map[string]any
	if err := json.Unmarshal(res.data, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", res.data, err)
	}
	return m
}

func write(t *testing.T, c *websocket.Conn, typ websocket.MessageType, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, []byte(data)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitConn(t *testing.T, srv *wstest.Server) *wstest.Conn {
	t.Helper()
	conns, err := srv.WaitConns(testCtx(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	return conns[len(conns)-1]
}

// --- tests -----------------------------------------------------------------

func TestEcho(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "ws://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/") {
		t.Fatalf("URL = %q", srv.URL())
	}
	if srv.URL() != "ws://"+srv.Addr()+"/" {
		t.Fatalf("URL %q does not match Addr %q", srv.URL(), srv.Addr())
	}
	if srv.Certificate() != nil || srv.ClientTLSConfig() != nil {
		t.Fatal("non-TLS server has a certificate")
	}

	// The default client (nil options) works for ws://.
	c := dial(t, srv, "/any/path?x=1", &websocket.DialOptions{})
	r := startReader(t, c)

	write(t, c, websocket.MessageText, "hello")
	if got := r.nextMsg(t); got.typ != websocket.MessageText || string(got.data) != "hello" {
		t.Fatalf("echo = %v %q", got.typ, got.data)
	}
	bin := []byte{0, 1, 2, 255}
	write(t, c, websocket.MessageBinary, string(bin))
	if got := r.nextMsg(t); got.typ != websocket.MessageBinary || !bytes.Equal(got.data, bin) {
		t.Fatalf("echo = %v %x", got.typ, got.data)
	}
	// A JSON-RPC request without a responder is echoed too.
	req := `{"jsonrpc":"2.0","id":1,"method":"nope"}`
	write(t, c, websocket.MessageText, req)
	if got := r.nextMsg(t); string(got.data) != req {
		t.Fatalf("echo = %q", got.data)
	}
	// Large frames pass the default read limit.
	big := bytes.Repeat([]byte("x"), 2<<20)
	write(t, c, websocket.MessageBinary, string(big))
	if got := r.nextMsg(t); !bytes.Equal(got.data, big) {
		t.Fatalf("big echo: %d bytes", len(got.data))
	}
}

func TestEchoOff(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	write(t, c, websocket.MessageText, "one")
	if _, err := sc.WaitReceived(testCtx(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if err := sc.Send(testCtx(t, 5*time.Second), websocket.MessageText, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMsg(t); string(got.data) != "marker" {
		t.Fatalf("got %q, want only the injected marker (no echo)", got.data)
	}
}

func TestJSONRPC(t *testing.T) {
	srv := wstest.NewServer(
		wstest.WithResponder("add", func(_ *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
			var p []int
			if err := json.Unmarshal(params, &p); err != nil {
				return nil, &wstest.RPCError{Code: wstest.CodeInvalidParams, Message: "bad params"}
			}
			sum := 0
			for _, v := range p {
				sum += v
			}
			return sum, nil
		}),
		wstest.WithResponder("fail", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			return nil, &wstest.RPCError{Code: 10009, Message: "not_enough_funds", Data: map[string]int{"need": 3}}
		}),
	)
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)

	cases := []struct{ req, want string }{
		{`{"jsonrpc":"2.0","id":7,"method":"add","params":[1,2,3]}`,
			`{"jsonrpc":"2.0","id":7,"result":6}`},
		{`{"jsonrpc":"2.0","id":"abc-1","method":"add","params":[40,2]}`,
			`{"jsonrpc":"2.0","id":"abc-1","result":42}`},
		{`{"jsonrpc":"2.0","id":12345678901234567890,"method":"add","params":[]}`,
			`{"jsonrpc":"2.0","id":12345678901234567890,"result":0}`},
		{`{"jsonrpc":"2.0","id":8,"method":"add","params":{"x":1}}`,
			`{"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"bad params"}}`},
		{`{"jsonrpc":"2.0","id":9,"method":"fail"}`,
			`{"jsonrpc":"2.0","id":9,"error":{"code":10009,"message":"not_enough_funds","data":{"need":3}}}`},
	}
	for _, tc := range cases {
		write(t, c, websocket.MessageText, tc.req)
		if got := r.nextMsg(t); string(got.data) != tc.want {
			t.Errorf("request %s\n got  %s\n want %s", tc.req, got.data, tc.want)
		}
	}

	// A notification (no id) gets no reply: the next reply is for id 10.
	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","method":"add","params":[1]}`)
	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":10,"method":"add","params":[2]}`)
	if got := r.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","id":10,"result":2}` {
		t.Errorf("after notification got %s", got.data)
	}

	// Handle adds a responder at run time; nil removes it (back to echo).
	srv.Handle("whoami", func(c *wstest.Conn, _ json.RawMessage) (any, *wstest.RPCError) {
		return map[string]any{"id": c.ID(), "path": c.Request().URL.Path}, nil
	})
	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":11,"method":"whoami"}`)
	if got := r.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","id":11,"result":{"id":1,"path":"/"}}` {
		t.Errorf("whoami got %s", got.data)
	}
	srv.Handle("whoami", nil)
	req := `{"jsonrpc":"2.0","id":12,"method":"whoami"}`
	write(t, c, websocket.MessageText, req)
	if got := r.nextMsg(t); string(got.data) != req {
		t.Errorf("removed responder: got %s, want echo", got.data)
	}
}

func TestServerPings(t *testing.T) {
	srv := wstest.NewServer(wstest.WithServerPings(20 * time.Millisecond))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	startReader(t, c) // the reader answers pings
	sc := waitConn(t, srv)
	eventually(t, 5*time.Second, "3 pongs", func() bool { return sc.PongsReceived() >= 3 })
	if sent, got := sc.PingsSent(), sc.PongsReceived(); sent < got {
		t.Fatalf("pings sent %d < pongs received %d", sent, got)
	}

	// The client's own pings are answered and counted.
	if err := c.Ping(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if sc.PingsReceived() != 1 {
		t.Fatalf("PingsReceived = %d", sc.PingsReceived())
	}
}

func TestDeribitHeartbeatTimeout(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitHeartbeat(50 * time.Millisecond))
	defer srv.Close()
	c := dial(t, srv, "/ws/api/v2", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	m := r.nextJSON(t)
	if m["method"] != "heartbeat" || m["params"].(map[string]any)["type"] != "test_request" {
		t.Fatalf("unexpected first message %v", m)
	}
	// Do not answer: the server must close the connection.
	start := time.Now()
	var res readResult
	for res = r.next(t, 5*time.Second); res.err == nil; res = r.next(t, 5*time.Second) {
	}
	if code := websocket.CloseStatus(res.err); code != websocket.StatusNormalClosure {
		t.Fatalf("close status = %v (err %v)", code, res.err)
	}
	var ce websocket.CloseError
	if !errors.As(res.err, &ce) || ce.Reason != wstest.HeartbeatTimeoutReason {
		t.Fatalf("close error = %v", res.err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("closing took %v", d)
	}
	select {
	case <-sc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server conn not done")
	}
	if !sc.HeartbeatTimedOut() || srv.HeartbeatTimeouts() != 1 {
		t.Fatalf("HeartbeatTimedOut=%v HeartbeatTimeouts=%d", sc.HeartbeatTimedOut(), srv.HeartbeatTimeouts())
	}
	if code, reason := sc.CloseReason(); code != websocket.StatusNormalClosure || reason != wstest.HeartbeatTimeoutReason {
		t.Fatalf("CloseReason = %v %q", code, reason)
	}
	if srv.ConnCount() != 0 {
		t.Fatalf("ConnCount = %d", srv.ConnCount())
	}
}

func TestDeribitHeartbeatAnswered(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitHeartbeat(50 * time.Millisecond))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	id := 0
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		m := r.nextJSON(t)
		switch {
		case m["method"] == "heartbeat":
			id++
			write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":`+itoa(id)+`,"method":"public/test","params":{}}`)
		case m["result"] != nil:
			if m["result"].(map[string]any)["version"] != "wstest" {
				t.Fatalf("public/test result %v", m)
			}
		default:
			t.Fatalf("unexpected %v", m)
		}
	}
	if sc.HeartbeatsSent() < 4 || sc.TestResponses() < 3 {
		t.Fatalf("HeartbeatsSent=%d TestResponses=%d", sc.HeartbeatsSent(), sc.TestResponses())
	}
	if srv.HeartbeatTimeouts() != 0 || sc.HeartbeatTimedOut() || srv.ConnCount() != 1 {
		t.Fatalf("connection was closed: timeouts=%d count=%d", srv.HeartbeatTimeouts(), srv.ConnCount())
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestDeribitSetHeartbeat(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":0.05}}`)
	if got := r.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","id":1,"result":"ok"}` {
		t.Fatalf("set_heartbeat reply %s", got.data)
	}
	if m := r.nextJSON(t); m["method"] != "heartbeat" {
		t.Fatalf("want test_request, got %v", m)
	}
	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":2,"method":"public/disable_heartbeat","params":{}}`)
	for {
		m := r.nextJSON(t)
		if m["id"] == float64(2) {
			break
		}
	}
	n := sc.HeartbeatsSent()
	time.Sleep(150 * time.Millisecond)
	if sc.HeartbeatsSent() != n || srv.ConnCount() != 1 {
		t.Fatalf("heartbeat not disabled: %d -> %d, conns %d", n, sc.HeartbeatsSent(), srv.ConnCount())
	}

	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":3,"method":"public/set_heartbeat","params":{"interval":-1}}`)
	if m := r.nextJSON(t); m["error"].(map[string]any)["code"] != float64(wstest.CodeInvalidParams) {
		t.Fatalf("bad interval accepted: %v", m)
	}
}

func TestDeribitSubscribePublish(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	c1 := dial(t, srv, "/", nil)
	r1 := startReader(t, c1)
	c2 := dial(t, srv, "/", nil)
	r2 := startReader(t, c2)
	conns, err := srv.WaitConns(testCtx(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}

	write(t, c1, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["ticker.BTC-PERPETUAL.raw","book.BTC-PERPETUAL.100ms"]}}`)
	if got := r1.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","id":1,"result":["ticker.BTC-PERPETUAL.raw","book.BTC-PERPETUAL.100ms"]}` {
		t.Fatalf("subscribe reply %s", got.data)
	}
	write(t, c2, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"private/subscribe","params":{"channels":["user.orders.any.any.raw"]}}`)
	r2.nextMsg(t)

	sc1, sc2 := conns[0], conns[1]
	if got := strings.Join(sc1.Channels(), ","); got != "book.BTC-PERPETUAL.100ms,ticker.BTC-PERPETUAL.raw" {
		t.Fatalf("Channels = %s", got)
	}
	if err := sc2.WaitSubscribed(testCtx(t, time.Second), "user.orders.any.any.raw"); err != nil {
		t.Fatal(err)
	}

	if n := srv.Publish("ticker.BTC-PERPETUAL.raw", map[string]any{"last_price": 50000.5}); n != 1 {
		t.Fatalf("Publish delivered to %d", n)
	}
	want := `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.raw","data":{"last_price":50000.5}}}`
	if got := r1.nextMsg(t); string(got.data) != want {
		t.Fatalf("notification\n got  %s\n want %s", got.data, want)
	}
	if n := srv.Publish("user.orders.any.any.raw", json.RawMessage(`[1,2]`)); n != 1 {
		t.Fatalf("Publish delivered to %d", n)
	}
	if got := r2.nextMsg(t); !strings.Contains(string(got.data), `"data":[1,2]`) {
		t.Fatalf("notification %s", got.data)
	}

	write(t, c1, websocket.MessageText, `{"jsonrpc":"2.0","id":2,"method":"public/unsubscribe","params":{"channels":["ticker.BTC-PERPETUAL.raw","never.subscribed"]}}`)
	if got := r1.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","id":2,"result":["ticker.BTC-PERPETUAL.raw"]}` {
		t.Fatalf("unsubscribe reply %s", got.data)
	}
	if n := srv.Publish("ticker.BTC-PERPETUAL.raw", 1); n != 0 {
		t.Fatalf("Publish after unsubscribe delivered to %d", n)
	}

	write(t, c1, websocket.MessageText, `{"jsonrpc":"2.0","id":3,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":"x","client_secret":"y"}}`)
	m := r1.nextJSON(t)
	res := m["result"].(map[string]any)
	if res["access_token"] != "tok" || res["refresh_token"] != "ref" || res["expires_in"] != float64(900) || res["token_type"] != "bearer" {
		t.Fatalf("auth reply %v", m)
	}
	if !sc1.Authenticated() || sc2.Authenticated() {
		t.Fatal("Authenticated wrong")
	}

	write(t, c1, websocket.MessageText, `{"jsonrpc":"2.0","id":4,"method":"public/subscribe","params":{}}`)
	if m := r1.nextJSON(t); m["error"] == nil {
		t.Fatalf("subscribe without channels accepted: %v", m)
	}
	write(t, c1, websocket.MessageText, `{"jsonrpc":"2.0","id":5,"method":"public/test"}`)
	if got := r1.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","id":5,"result":{"version":"wstest"}}` {
		t.Fatalf("public/test reply %s", got.data)
	}
	if sc1.TestResponses() != 1 {
		t.Fatalf("TestResponses = %d", sc1.TestResponses())
	}
	if _, err := sc1.WaitRequest(testCtx(t, time.Second), "public/auth"); err != nil {
		t.Fatal(err)
	}
}

func TestDisconnectAll(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	var readers []*clientReader
	for range 3 {
		readers = append(readers, startReader(t, dial(t, srv, "/", nil)))
	}
	conns, err := srv.WaitConns(testCtx(t, 5*time.Second), 3)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	srv.DisconnectAll(websocket.StatusCode(4001), "maintenance")
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("DisconnectAll with responsive clients took %v", d)
	}
	for i, r := range readers {
		res := r.next(t, 5*time.Second)
		if code := websocket.CloseStatus(res.err); code != 4001 {
			t.Fatalf("client %d: close status %v (err %v)", i, code, res.err)
		}
	}
	if err := srv.WaitConnCount(testCtx(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	for _, sc := range conns {
		if code, reason := sc.CloseReason(); code != 4001 || reason != "maintenance" {
			t.Fatalf("CloseReason = %v %q", code, reason)
		}
	}
	if srv.TotalConns() != 3 {
		t.Fatalf("TotalConns = %d", srv.TotalConns())
	}
}

func TestDisconnectUnresponsiveClient(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv, "/", nil) // never reads: cannot complete the handshake
	_ = c
	sc := waitConn(t, srv)
	start := time.Now()
	if err := sc.Disconnect(websocket.StatusGoingAway, "bye"); err == nil {
		t.Fatal("Disconnect succeeded without a handshake")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Disconnect took %v", d)
	}
	select {
	case <-sc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not done")
	}
}

func TestDrop(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	r := startReader(t, dial(t, srv, "/", nil))
	sc := waitConn(t, srv)
	sc.Drop()
	res := r.next(t, 5*time.Second)
	if res.err == nil {
		t.Fatal("read succeeded after Drop")
	}
	if code := websocket.CloseStatus(res.err); code != -1 {
		t.Fatalf("client saw a close frame (%v) after Drop: %v", code, res.err)
	}
	<-sc.Done()
	if code, _ := sc.CloseReason(); code != -1 {
		t.Fatalf("CloseReason = %v", code)
	}

	// DropAll drops every connection.
	r1 := startReader(t, dial(t, srv, "/", nil))
	r2 := startReader(t, dial(t, srv, "/", nil))
	if _, err := srv.WaitConns(testCtx(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	srv.DropAll()
	for _, r := range []*clientReader{r1, r2} {
		if res := r.next(t, 5*time.Second); res.err == nil || websocket.CloseStatus(res.err) != -1 {
			t.Fatalf("after DropAll: %v", res.err)
		}
	}
	if err := srv.WaitConnCount(testCtx(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	if srv.TotalConns() != 3 {
		t.Fatalf("TotalConns = %d", srv.TotalConns())
	}
}

func TestRefuseHandshakes(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	for _, status := range []int{http.StatusUnauthorized, http.StatusServiceUnavailable} {
		srv.RefuseHandshakes(status)
		c, resp, err := websocket.Dial(testCtx(t, 5*time.Second), srv.URL(), nil)
		if err == nil {
			_ = c.CloseNow()
			t.Fatalf("dial succeeded while refusing %d", status)
		}
		if resp == nil || resp.StatusCode != status {
			t.Fatalf("want status %d, got resp %v err %v", status, resp, err)
		}
	}
	if srv.RefusedHandshakes() != 2 || srv.TotalConns() != 0 {
		t.Fatalf("RefusedHandshakes=%d TotalConns=%d", srv.RefusedHandshakes(), srv.TotalConns())
	}
	srv.RefuseHandshakes(0)
	c := dial(t, srv, "/", nil)
	_ = c.Close(websocket.StatusNormalClosure, "")
	if srv.TotalConns() != 1 {
		t.Fatalf("TotalConns = %d", srv.TotalConns())
	}
}

func TestStall(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	if err := c.Ping(testCtx(t, 2*time.Second)); err != nil {
		t.Fatalf("ping before stall: %v", err)
	}
	sc.Stall()
	if !sc.Stalled() {
		t.Fatal("not stalled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := c.Ping(ctx)
	cancel()
	if err == nil {
		t.Fatal("ping succeeded on a stalled connection")
	}
	write(t, c, websocket.MessageText, "held") // held back, not lost
	if err := sc.Send(testCtx(t, time.Second), websocket.MessageText, []byte("x")); !errors.Is(err, wstest.ErrStalled) {
		t.Fatalf("Send while stalled: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(sc.Received()); n != 0 {
		t.Fatalf("received %d messages while stalled", n)
	}

	sc.Resume()
	if got := r.nextMsg(t); string(got.data) != "held" {
		t.Fatalf("after resume got %q", got.data)
	}
	if err := c.Ping(testCtx(t, 2*time.Second)); err != nil {
		t.Fatalf("ping after resume: %v", err)
	}
}

func TestCloseWithStalledConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithServerPings(10*time.Millisecond), wstest.WithDeribitHeartbeat(10*time.Millisecond))
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)
	sc.Stall()
	start := time.Now()
	srv.Close()
	srv.Close() // idempotent
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	for res := r.next(t, 5*time.Second); res.err == nil; res = r.next(t, 5*time.Second) {
	}
	select {
	case <-sc.Done():
	default:
		t.Fatal("conn not done after Close")
	}
	if _, err := srv.WaitConns(testCtx(t, time.Second), 1); !errors.Is(err, wstest.ErrServerClosed) {
		t.Fatalf("WaitConns after Close: %v", err)
	}
	if _, _, err := websocket.Dial(testCtx(t, time.Second), srv.URL(), nil); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}

func TestBroadcastAndSend(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	r1 := startReader(t, dial(t, srv, "/", nil))
	r2 := startReader(t, dial(t, srv, "/", nil))
	conns, err := srv.WaitConns(testCtx(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Broadcast(websocket.MessageText, []byte("all")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*clientReader{r1, r2} {
		if got := r.nextMsg(t); got.typ != websocket.MessageText || string(got.data) != "all" {
			t.Fatalf("broadcast got %v %q", got.typ, got.data)
		}
	}
	if err := conns[1].Send(testCtx(t, time.Second), websocket.MessageBinary, []byte{9}); err != nil {
		t.Fatal(err)
	}
	if err := conns[0].SendJSON(testCtx(t, time.Second), map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := conns[0].Notify(testCtx(t, time.Second), "heartbeat", map[string]string{"type": "heartbeat"}); err != nil {
		t.Fatal(err)
	}
	if got := r2.nextMsg(t); got.typ != websocket.MessageBinary || !bytes.Equal(got.data, []byte{9}) {
		t.Fatalf("send got %v %x", got.typ, got.data)
	}
	if got := r1.nextMsg(t); string(got.data) != `{"a":1}` {
		t.Fatalf("SendJSON got %s", got.data)
	}
	if got := r1.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}` {
		t.Fatalf("Notify got %s", got.data)
	}
}

func TestReceivedAndRequest(t *testing.T) {
	srv := wstest.NewServer(wstest.WithSubprotocols("v2.json", "v1.json"))
	defer srv.Close()
	opts := srv.DialOptions()
	opts.Subprotocols = []string{"v1.json"}
	opts.HTTPHeader = http.Header{"X-Api-Key": {"k1"}}
	c := dial(t, srv, "/ws/api/v2?token=abc", opts)
	if c.Subprotocol() != "v1.json" {
		t.Fatalf("client subprotocol %q", c.Subprotocol())
	}
	sc := waitConn(t, srv)
	if sc.ID() != 1 || sc.Subprotocol() != "v1.json" {
		t.Fatalf("ID=%d Subprotocol=%q", sc.ID(), sc.Subprotocol())
	}
	req := sc.Request()
	if req.URL.Path != "/ws/api/v2" || req.URL.Query().Get("token") != "abc" || req.Header.Get("X-Api-Key") != "k1" {
		t.Fatalf("request %v %v", req.URL, req.Header)
	}

	before := time.Now()
	write(t, c, websocket.MessageText, "a")
	write(t, c, websocket.MessageBinary, "b")
	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"private/buy"}`)
	msgs, err := sc.WaitReceived(testCtx(t, 5*time.Second), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].Type != websocket.MessageText || string(msgs[0].Data) != "a" ||
		msgs[1].Type != websocket.MessageBinary || string(msgs[1].Data) != "b" || msgs[0].At.Before(before) {
		t.Fatalf("received %+v", msgs)
	}
	msgs[0].Data[0] = 'z' // copies
	if string(sc.Received()[0].Data) != "a" {
		t.Fatal("Received does not return copies")
	}
	m, err := sc.WaitRequest(testCtx(t, time.Second), "private/buy")
	if err != nil || !strings.Contains(string(m.Data), "private/buy") {
		t.Fatalf("WaitRequest: %v %s", err, m.Data)
	}
	if _, err := sc.WaitReceived(testCtx(t, 50*time.Millisecond), 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReceived(4) = %v", err)
	}

	// When the client closes, the waits end with ErrConnClosed and the close
	// code is recorded.
	if err := c.Close(websocket.StatusGoingAway, "client leaving"); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.WaitReceived(testCtx(t, 5*time.Second), 4); !errors.Is(err, wstest.ErrConnClosed) {
		t.Fatalf("WaitReceived after close = %v", err)
	}
	if code, reason := sc.CloseReason(); code != websocket.StatusGoingAway || reason != "client leaving" {
		t.Fatalf("CloseReason = %v %q", code, reason)
	}
}

func TestConnCounts(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	if _, err := srv.WaitConns(testCtx(t, 50*time.Millisecond), 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConns on empty server = %v", err)
	}
	c1 := dial(t, srv, "/", nil)
	c2 := dial(t, srv, "/", nil)
	conns, err := srv.WaitConns(testCtx(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 || conns[0].ID() != 1 || conns[1].ID() != 2 {
		t.Fatalf("conns %v", conns)
	}
	if srv.Conn(2) != conns[1] || srv.Conn(3) != nil {
		t.Fatal("Conn(id)")
	}
	if err := c1.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitConnCount(testCtx(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if got := srv.Conns(); len(got) != 1 || got[0] != conns[1] {
		t.Fatalf("Conns after close: %v", got)
	}
	dial(t, srv, "/", nil)
	if err := srv.WaitTotalConns(testCtx(t, 5*time.Second), 3); err != nil {
		t.Fatal(err)
	}
	if srv.ConnCount() != 2 || srv.TotalConns() != 3 {
		t.Fatalf("ConnCount=%d TotalConns=%d", srv.ConnCount(), srv.TotalConns())
	}
	if got := srv.Conns(); got[1].ID() != 3 {
		t.Fatalf("accept order: %d", got[1].ID())
	}
	_ = c2
}

func TestReadLimit(t *testing.T) {
	srv := wstest.NewServer(wstest.WithReadLimit(10))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	write(t, c, websocket.MessageText, "0123456789")
	r.nextMsg(t)
	write(t, c, websocket.MessageText, "0123456789X")
	res := r.next(t, 5*time.Second)
	if code := websocket.CloseStatus(res.err); code != websocket.StatusMessageTooBig {
		t.Fatalf("close status %v (err %v)", code, res.err)
	}
}

func TestBlackhole(t *testing.T) {
	bh := wstest.NewBlackhole()
	defer bh.Close()
	if bh.URL() != "ws://"+bh.Addr()+"/" {
		t.Fatalf("URL %q", bh.URL())
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, _, err := websocket.Dial(ctx, bh.URL(), nil)
	if err == nil {
		_ = c.CloseNow()
		t.Fatal("dial to blackhole succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("dial returned after %v", d)
	}
	if err := bh.WaitAccepted(testCtx(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	bh.Close()
	bh.Close()
}

func TestTLS(t *testing.T) {
	srv := wstest.NewTLSServer(wstest.WithDeribit())
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "wss://127.0.0.1:") {
		t.Fatalf("URL %q", srv.URL())
	}
	if srv.Certificate() == nil || srv.ClientTLSConfig() == nil {
		t.Fatal("no certificate")
	}

	// Trusting client via ClientTLSConfig.
	opts := &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: srv.ClientTLSConfig()}}}
	c := dial(t, srv, "/ws", opts)
	r := startReader(t, c)
	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":"t","method":"public/test"}`)
	if got := r.nextMsg(t); string(got.data) != `{"jsonrpc":"2.0","id":"t","result":{"version":"wstest"}}` {
		t.Fatalf("reply %s", got.data)
	}
	sc := waitConn(t, srv)
	if sc.Request().TLS == nil {
		t.Fatal("no TLS state in request")
	}
	opts.HTTPClient.CloseIdleConnections()

	// DialOptions works too.
	c2 := dial(t, srv, "/", nil)
	_ = c2.Close(websocket.StatusNormalClosure, "")

	// Stall and Drop work below TLS.
	sc.Stall()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := c.Ping(ctx); err == nil {
		t.Fatal("ping on stalled TLS conn succeeded")
	}
	cancel()
	sc.Drop()
	for res := r.next(t, 5*time.Second); res.err == nil; res = r.next(t, 5*time.Second) {
	}

	// A client that does not trust the certificate is refused.
	_, _, err := websocket.Dial(testCtx(t, 5*time.Second), srv.URL(), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}},
	})
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		t.Fatalf("untrusted dial: %v", err)
	}
}

func TestResponderCanDisconnect(t *testing.T) {
	srv := wstest.NewServer(wstest.WithResponder("kick", func(c *wstest.Conn, _ json.RawMessage) (any, *wstest.RPCError) {
		_ = c.Disconnect(websocket.StatusPolicyViolation, "kicked")
		return nil, nil
	}), wstest.WithResponder("crash", func(c *wstest.Conn, _ json.RawMessage) (any, *wstest.RPCError) {
		c.Drop()
		return nil, nil
	}))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"kick"}`)
	if res := r.next(t, 5*time.Second); websocket.CloseStatus(res.err) != websocket.StatusPolicyViolation {
		t.Fatalf("kick: %v", res.err)
	}
	c2 := dial(t, srv, "/", nil)
	r2 := startReader(t, c2)
	write(t, c2, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"crash"}`)
	if res := r2.next(t, 5*time.Second); res.err == nil || websocket.CloseStatus(res.err) != -1 {
		t.Fatalf("crash: %v", res.err)
	}
	if err := srv.WaitConnCount(testCtx(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
}

func TestCaptureLimitBoundsRecording(t *testing.T) {
	srv := wstest.NewServer(wstest.WithCaptureLimit(3), wstest.WithEcho(false))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := 0; i < 10; i++ {
		if err := c.Write(ctx, websocket.MessageText, []byte{byte('0' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	conns, err := srv.WaitConns(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for conns[0].ReceivedCount() < 10 {
		if ctx.Err() != nil {
			t.Fatalf("received %d of 10", conns[0].ReceivedCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := conns[0].Received()
	if len(got) != 3 || string(got[0].Data) != "0" || string(got[2].Data) != "2" {
		t.Fatalf("recorded %d messages: %v", len(got), got)
	}
}
