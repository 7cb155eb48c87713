package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opts transport.Options) *transport.Conn {
	t.Helper()
	c, err := transport.Dial(ctxT(t, 5*time.Second), url, opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func TestEchoTextAndBinary(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{Header: http.Header{"X-Key": {"k1"}}})
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{{transport.MessageText, []byte(`{"hello":"world"}`)}, {transport.MessageBinary, []byte{0, 1, 2, 255}}} {
		if err := c.Write(context.Background(), m.typ, m.data); err != nil {
			t.Fatalf("Write: %v", err)
		}
		typ, data, err := c.Read()
		if err != nil || typ != m.typ || !bytes.Equal(data, m.data) {
			t.Fatalf("Read = %v %q %v, want %v %q", typ, data, err, m.typ, m.data)
		}
	}
	conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := conns[0].Request().Header.Get("X-Key"); got != "k1" {
		t.Fatalf("server saw header X-Key=%q", got)
	}
}

func TestSubprotocol(t *testing.T) {
	srv := wstest.NewServer(wstest.WithSubprotocols("v2.json"))
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{Subprotocols: []string{"v2.json"}})
	if c.Subprotocol() != "v2.json" {
		t.Fatalf("Subprotocol = %q", c.Subprotocol())
	}
}

func TestBadURLs(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:1/", "127.0.0.1:80", "ws://", "ws:///path", "ftp://x", "ws://%zz", "wss://:443/"} {
		_, err := transport.Dial(context.Background(), u, transport.Options{})
		if !errors.Is(err, transport.ErrBadURL) {
			t.Errorf("Dial(%q) = %v, want ErrBadURL", u, err)
		}
		var de *transport.DialError
		if !errors.As(err, &de) {
			t.Errorf("Dial(%q) error is %T, want *DialError", u, err)
		}
		if transport.IsRecoverable(err) {
			t.Errorf("Dial(%q): bad URL reported recoverable", u)
		}
	}
}

func TestRefusedPortIsRecoverable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = transport.Dial(ctxT(t, 2*time.Second), "ws://"+addr+"/", transport.Options{})
	if err == nil || !errors.Is(err, syscallECONNREFUSED()) {
		t.Fatalf("Dial(closed port) = %v, want connection refused", err)
	}
	if !transport.IsRecoverable(err) {
		t.Fatalf("refused connection reported fatal: %v", err)
	}
}

func TestUnresolvableHostIsFatal(t *testing.T) {
	_, err := transport.Dial(ctxT(t, 3*time.Second), "ws://no-such-host.zenws.test/", transport.Options{NetDial: testutil.NXDomainDialer(t)})
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("Dial(unresolvable) = %v, want *net.DNSError not found", err)
	}
	if transport.IsRecoverable(err) {
		t.Fatalf("unresolvable host reported recoverable: %v", err)
	}
}

func TestHandshakeStatuses(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	for _, c := range []struct {
		status      int
		recoverable bool
	}{{401, false}, {403, false}, {404, false}, {400, false}, {429, true}, {503, true}, {500, true}} {
		srv.RefuseHandshakes(c.status)
		_, err := transport.Dial(ctxT(t, 2*time.Second), srv.URL(), transport.Options{})
		var he *transport.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != c.status {
			t.Fatalf("status %d: Dial = %v, want *HandshakeError with that status", c.status, err)
		}
		if got := transport.IsRecoverable(err); got != c.recoverable {
			t.Errorf("status %d: IsRecoverable = %v, want %v", c.status, got, c.recoverable)
		}
	}
	srv.RefuseHandshakes(0)
	dial(t, srv.URL(), transport.Options{})
}

func TestHandshakeTimeoutAgainstSilentServer(t *testing.T) {
	bh := wstest.NewBlackhole()
	defer bh.Close()
	start := time.Now()
	_, err := transport.Dial(context.Background(), bh.URL(), transport.Options{HandshakeTimeout: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial(blackhole) = %v, want a deadline error", err)
	}
	if !transport.IsRecoverable(err) {
		t.Fatal("a handshake timeout must be recoverable")
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("Dial waited %v for a 200ms handshake timeout", waited)
	}
}

func TestReadLimit(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{ReadLimit: 1024})
	conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := conns[0].Send(ctxT(t, 2*time.Second), websocket.MessageText, bytes.Repeat([]byte("a"), 2048)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read()
	var tooBig *transport.MessageTooBigError
	if !errors.As(err, &tooBig) || tooBig.Limit != 1024 || !errors.Is(err, transport.ErrMessageTooBig) {
		t.Fatalf("Read = %v, want *MessageTooBigError{1024}", err)
	}
	if code, _ := waitCloseReason(t, conns[0]); code != websocket.StatusMessageTooBig {
		t.Fatalf("server saw close code %v, want 1009", code)
	}
	if transport.DefaultReadLimit < 1<<20 {
		t.Fatalf("DefaultReadLimit %d is too small for order-book snapshots", transport.DefaultReadLimit)
	}
}

func waitCloseReason(t *testing.T, c *wstest.Conn) (websocket.StatusCode, string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server connection did not end")
	}
	return c.CloseReason()
}

func TestInvalidUTF8FailsWith1007(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{})
	conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := conns[0].Send(ctxT(t, 2*time.Second), websocket.MessageText, []byte{'o', 'k', 0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(); !errors.Is(err, transport.ErrInvalidUTF8) {
		t.Fatalf("Read = %v, want ErrInvalidUTF8", err)
	}
	if code, _ := waitCloseReason(t, conns[0]); code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("server saw close code %v, want 1007", code)
	}
	if err := c.Write(context.Background(), transport.MessageText, []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Write after failure = %v, want ErrClosed", err)
	}
}

func TestPeerCloseCodes(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	for _, code := range []websocket.StatusCode{1000, 1001, 1008, 1011, 1013, 3000, 4000, 4999} {
		c := dial(t, srv.URL(), transport.Options{})
		conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = conns[len(conns)-1].Disconnect(code, "bye "+fmt.Sprint(int(code))) }()
		_, _, err = c.Read()
		var ce *transport.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Reason != fmt.Sprintf("bye %d", int(code)) {
			t.Fatalf("code %d: Read = %v, want *CloseError with that code and reason", code, err)
		}
		if !transport.IsRecoverable(err) {
			t.Errorf("close %d reported fatal", code)
		}
		waitCloseReason(t, conns[len(conns)-1])
	}
}

func TestAbruptDropIsNotACloseFrame(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{})
	if _, err := srv.WaitConns(ctxT(t, 2*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	srv.DropAll()
	_, _, err := c.Read()
	var ce *transport.CloseError
	if err == nil || errors.As(err, &ce) {
		t.Fatalf("Read after drop = %v, want a network error, not a close frame", err)
	}
	if !transport.IsRecoverable(err) {
		t.Fatalf("drop reported fatal: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after a failed read")
	}
}

func TestPingMeasuresRoundTrip(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{})
	go func() {
		for {
			if _, _, err := c.Read(); err != nil {
				return
			}
		}
	}()
	rtt, err := c.Ping(ctxT(t, 2*time.Second))
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v", rtt, err)
	}
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	conns[0].Stall()
	if _, err := c.Ping(ctxT(t, 200*time.Millisecond)); err == nil {
		t.Fatal("Ping succeeded against a stalled server")
	}
	conns[0].Resume()
	if _, err := c.Ping(ctxT(t, 2*time.Second)); err != nil {
		t.Fatalf("Ping after resume: %v (a ping timeout must not close the connection)", err)
	}
}

func TestServerPingsObserved(t *testing.T) {
	srv := wstest.NewServer(wstest.WithServerPings(20 * time.Millisecond))
	defer srv.Close()
	got := make(chan []byte, 100)
	c := dial(t, srv.URL(), transport.Options{OnPingReceived: func(p []byte) {
		select {
		case got <- append([]byte(nil), p...):
		default:
		}
	}})
	go func() {
		for {
			if _, _, err := c.Read(); err != nil {
				return
			}
		}
	}()
	for i := 0; i < 3; i++ {
		select {
		case <-got:
		case <-time.After(3 * time.Second):
			t.Fatalf("saw %d server pings, want 3", i)
		}
	}
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	deadline := time.Now().Add(3 * time.Second)
	for conns[0].PongsReceived() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if conns[0].PongsReceived() == 0 {
		t.Fatal("the server never got a pong back")
	}
}

func TestWriteTimeoutOnStalledPeer(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{WriteTimeout: 200 * time.Millisecond})
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	conns[0].Stall()
	big := bytes.Repeat([]byte("x"), 1<<20)
	start := time.Now()
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		err = c.Write(context.Background(), transport.MessageBinary, big)
	}
	if !errors.Is(err, transport.ErrWriteTimeout) {
		t.Fatalf("Write to a stalled peer = %v, want ErrWriteTimeout", err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("stall detected only after %v", waited)
	}
	if err := c.Write(context.Background(), transport.MessageText, []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Write after timeout = %v, want ErrClosed", err)
	}
	// The reader learns why: the write timeout, not "use of closed connection".
	if _, _, err := c.Read(); !errors.Is(err, transport.ErrWriteTimeout) {
		t.Fatalf("Read after a write timeout = %v, want ErrWriteTimeout", err)
	}
	if !errors.Is(c.Err(), transport.ErrWriteTimeout) {
		t.Fatalf("Err() = %v", c.Err())
	}
}

func TestCallerContextNeverClosesTheConnection(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Write(cancelled, transport.MessageText, []byte("x")); err == nil {
		// The slot was free, so the write may go ahead; either way the
		// connection must stay usable.
		if _, _, err := c.Read(); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	time.Sleep(5 * time.Millisecond)
	_ = c.Write(short, transport.MessageText, []byte("y"))
	if err := c.Write(context.Background(), transport.MessageText, []byte("still-open")); err != nil {
		t.Fatalf("connection died after a caller's context expired: %v", err)
	}
	for {
		_, data, err := c.Read()
		if err != nil {
			t.Fatal(err)
		}
		if string(data) == "still-open" {
			return
		}
	}
}

func TestCloseTwiceAndCloseCode(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{})
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	go func() {
		for {
			if _, _, err := c.Read(); err != nil {
				return
			}
		}
	}()
	if err := c.Close(websocket.StatusGoingAway, "bye"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if err := c.CloseNow(); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("CloseNow after Close = %v, want ErrClosed", err)
	}
	if code, reason := waitCloseReason(t, conns[0]); code != websocket.StatusGoingAway || reason != "bye" {
		t.Fatalf("server saw %v %q, want 1001 bye", code, reason)
	}
}

func TestCloseIsBoundedOnStalledPeer(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv.URL(), transport.Options{CloseTimeout: 300 * time.Millisecond})
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	conns[0].Stall()
	start := time.Now()
	_ = c.Close(websocket.StatusNormalClosure, "")
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("Close took %v on a stalled peer with a 300ms close timeout", waited)
	}
}

func TestTLSVerifiedByDefault(t *testing.T) {
	srv := wstest.NewTLSServer()
	defer srv.Close()
	_, err := transport.Dial(ctxT(t, 3*time.Second), srv.URL(), transport.Options{})
	if err == nil || transport.IsRecoverable(err) {
		t.Fatalf("Dial(self-signed) = %v, want a fatal certificate error", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error does not mention the certificate: %v", err)
	}
	c := dial(t, srv.URL(), transport.Options{TLSConfig: srv.ClientTLSConfig()})
	if err := c.Write(context.Background(), transport.MessageText, []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if _, data, err := c.Read(); err != nil || string(data) != "over tls" {
		t.Fatalf("Read over TLS = %q, %v", data, err)
	}
}

func TestErrorsNeverCarrySecrets(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(401)
	_, err := transport.Dial(ctxT(t, 2*time.Second), srv.URL()+"ws?listenKey=TOPSECRET", transport.Options{Header: http.Header{"X-Api-Key": {"HEADERSECRET"}}})
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(err.Error(), "HEADERSECRET") {
		t.Fatalf("error leaks a secret: %v", err)
	}
}

// faultConn fails writes once armed: after writing at most partial bytes
// of the buffer (0: none).
type faultConn struct {
	net.Conn
	armed   chan struct{}
	partial int
}

func (f *faultConn) Write(p []byte) (int, error) {
	select {
	case <-f.armed:
		n := min(f.partial, len(p))
		if n > 0 {
			n, _ = f.Conn.Write(p[:n])
		}
		return n, errors.New("injected: connection reset by peer")
	default:
		return f.Conn.Write(p)
	}
}

// A write that fails before any byte left the process says so
// (ErrNotSent: resending elsewhere is safe); one that failed half-way does
// not.
func TestFailedWriteSaysWhetherAnythingWasSent(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	for _, partial := range []int{0, 3} {
		fc := &faultConn{armed: make(chan struct{}), partial: partial}
		opts := transport.Options{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			fc.Conn = c
			return fc, err
		}}
		conn, err := transport.Dial(testutil.Context(t, 5*time.Second), srv.URL(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Write(context.Background(), websocket.MessageText, []byte("fine")); err != nil {
			t.Fatal(err)
		}
		close(fc.armed)
		err = conn.Write(context.Background(), websocket.MessageText, []byte("lost"))
		if err == nil {
			t.Fatal("write on a reset connection succeeded")
		}
		if got := errors.Is(err, transport.ErrNotSent); got != (partial == 0) {
			t.Fatalf("partial %d: errors.Is(err, ErrNotSent) = %v (%v)", partial, got, err)
		}
		// The connection's own error (what its reader and the requests
		// in flight on it see) never says "not sent": it is not about
		// them (review of failover, finding 7).
		<-conn.Done()
		if cerr := conn.Err(); cerr == nil || errors.Is(cerr, transport.ErrNotSent) || strings.Contains(cerr.Error(), "not sent") {
			t.Fatalf("partial %d: the connection's error %v says not sent", partial, cerr)
		}
		if err := conn.Write(context.Background(), websocket.MessageText, []byte("after")); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("write after the failure: %v, want ErrClosed", err)
		}
		_ = conn.CloseNow()
	}
}
