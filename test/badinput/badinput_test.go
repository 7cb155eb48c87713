// Package badinput holds one table of hostile and broken inputs across the
// transport, the client, the supervisor and the balancer. Each row names
// the typed error or the behaviour it expects; none may crash the process.
package badinput

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

// Values of actors' unexported tuning constants that these tests rely on
// (documented on the options that use them).
const (
	minStableAfter           = 10 * time.Millisecond // Config.StableAfter's minimum
	defaultRetryCount        = 3                     // WithRetryCount's default
	defaultInboundQueueBytes = 64 << 20              // WithInboundQueue's byte default
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

type row struct {
	name   string
	expect string // the typed error or behaviour
	run    func(t *testing.T)
}

// runRows runs each row as a subtest under a recover: a row that panics
// fails, naming what it expected.
func runRows(t *testing.T, rows []row) {
	t.Helper()
	var mu sync.Mutex
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					defer mu.Unlock()
					t.Fatalf("panicked (expected %s): %v", r.expect, p)
				}
			}()
			r.run(t)
		})
	}
}

func ctx(t *testing.T) context.Context { return testutil.Context(t, 10*time.Second) }

func fast(opts ...actors.Option) []actors.Option {
	return append([]actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(100 * time.Millisecond),
		actors.WithTimeout(time.Second),
	}, opts...)
}

func connect(t *testing.T, url string, opts ...actors.Option) *actors.Client {
	t.Helper()
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), url, fast(opts...)...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dialErr(t *testing.T, url string) error {
	t.Helper()
	c, err := transport.Dial(testutil.Context(t, 3*time.Second), url, transport.Options{HandshakeTimeout: time.Second})
	if err == nil {
		_ = c.CloseNow()
		t.Fatal("dial succeeded")
	}
	return err
}

func want(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want %v", err, target)
	}
}

func wantConfigError(t *testing.T, err error) {
	t.Helper()
	if !errors.As(err, new(*actors.ConfigError)) {
		t.Fatalf("got %v, want a *actors.ConfigError", err)
	}
}

func handshake(t *testing.T, status int, recoverable bool) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(status)
	err := dialErr(t, srv.URL())
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != status || transport.IsRecoverable(err) != recoverable {
		t.Fatalf("got %v, want a HandshakeError %d with recoverable=%v", err, status, recoverable)
	}
}

// serverSends connects a client whose server sends one message built by
// send, and returns the client and its inbox.
func serverSends(t *testing.T, send func(ctx context.Context, c *websocket.Conn) error, opts ...actors.Option) (*actors.Client, chan actors.Inbound) {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = send(r.Context(), c)
		for { // keep the connection until the client goes
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(hs.Close)
	got := make(chan actors.Inbound, 16)
	c := connect(t, "ws"+strings.TrimPrefix(hs.URL, "http"), append(opts, actors.WithHandler(func(in actors.Inbound) {
		select {
		case got <- in:
		default:
		}
	}))...)
	return c, got
}

func next(t *testing.T, ch chan actors.Inbound) actors.Inbound {
	t.Helper()
	select {
	case in := <-ch:
		return in
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered within 5 s")
	}
	return actors.Inbound{}
}

// closeFromServer has the server close every connection with code and
// checks the client's reason and that it reconnects.
func closeFromServer(t *testing.T, code websocket.StatusCode) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, srv.URL())
	conns, err := srv.WaitConns(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	_ = conns[0].Disconnect(code, "bad input table")
	testutil.Eventually(t, 5*time.Second, "reconnected", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	var ce *transport.CloseError
	if err := c.Health().LastError; !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("last error %v, want a CloseError %d", err, code)
	}
}

func rpcServer() *wstest.Server {
	return wstest.NewServer(wstest.WithDeribit())
}

func TestHostileInputs(t *testing.T) {
	rows := []row{
		// ---- transport
		{"URL with an http scheme", "transport.ErrBadURL", func(t *testing.T) { want(t, dialErr(t, "http://127.0.0.1:1/"), transport.ErrBadURL) }},
		{"URL without a host", "transport.ErrBadURL", func(t *testing.T) { want(t, dialErr(t, "ws:///path"), transport.ErrBadURL) }},
		{"URL that does not parse", "transport.ErrBadURL", func(t *testing.T) { want(t, dialErr(t, "ws://[::1"), transport.ErrBadURL) }},
		{"handshake answered 401", "*HandshakeError 401, fatal", func(t *testing.T) { handshake(t, 401, false) }},
		{"handshake answered 404", "*HandshakeError 404, fatal", func(t *testing.T) { handshake(t, 404, false) }},
		{"handshake answered 429", "*HandshakeError 429, recoverable", func(t *testing.T) { handshake(t, 429, true) }},
		{"handshake answered 503", "*HandshakeError 503, recoverable", func(t *testing.T) { handshake(t, 503, true) }},
		{"slowloris server: accepts, never answers the upgrade", "DialError after the handshake timeout, recoverable", func(t *testing.T) {
			bh := wstest.NewBlackhole()
			defer bh.Close()
			err := dialErr(t, bh.URL())
			var de *transport.DialError
			if !errors.As(err, &de) || !errors.Is(err, context.DeadlineExceeded) || !transport.IsRecoverable(err) {
				t.Fatalf("got %v", err)
			}
		}},
		{"message over the read limit", "*MessageTooBigError, reconnect", func(t *testing.T) {
			c, _ := serverSends(t, func(ctx context.Context, c *websocket.Conn) error {
				return c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 4096)))
			}, actors.WithReadLimit(1024))
			testutil.Eventually(t, 5*time.Second, "the oversized message ended a connection", func() bool {
				var tb *transport.MessageTooBigError
				return errors.As(c.Health().LastError, &tb)
			})
		}},
		{"message in many fragments", "delivered whole", func(t *testing.T) {
			_, got := serverSends(t, func(ctx context.Context, c *websocket.Conn) error {
				w, err := c.Writer(ctx, websocket.MessageText)
				if err != nil {
					return err
				}
				for _, part := range []string{`{"frag`, `mented":`, `true}`} {
					if _, err := w.Write([]byte(part)); err != nil {
						return err
					}
				}
				return w.Close()
			})
			if in := next(t, got); string(in.Data) != `{"fragmented":true}` || in.Kind != actors.KindJSON {
				t.Fatalf("delivered %v %s", in.Kind, in.Data)
			}
		}},
		{"text message with invalid UTF-8", "transport.ErrInvalidUTF8 (close 1007), reconnect", func(t *testing.T) {
			c, _ := serverSends(t, func(ctx context.Context, c *websocket.Conn) error {
				return c.Write(ctx, websocket.MessageText, []byte{0xff, 0xfe, 'x'})
			})
			testutil.Eventually(t, 5*time.Second, "invalid UTF-8 ended a connection", func() bool {
				return errors.Is(c.Health().LastError, transport.ErrInvalidUTF8)
			})
		}},
		{"close code 4999 (application-defined)", "*CloseError 4999, reconnect", func(t *testing.T) { closeFromServer(t, 4999) }},
		{"close code 1011 (server error)", "*CloseError 1011, reconnect", func(t *testing.T) { closeFromServer(t, websocket.StatusInternalError) }},

		// ---- client
		{"Send of invalid UTF-8", "transport.ErrInvalidUTF8, nothing sent", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			want(t, connect(t, srv.URL()).Send(ctx(t), []byte{0xc3, 0x28}), transport.ErrInvalidUTF8)
		}},
		{"Request of garbage JSON", "actors.ErrInvalidRequest", func(t *testing.T) {
			srv := rpcServer()
			defer srv.Close()
			_, err := connect(t, srv.URL()).Request(ctx(t), []byte(`{"id":1,"method":`))
			want(t, err, actors.ErrInvalidRequest)
		}},
		{"Request ids of every type", "integer and string answered; null, bool, float, object, array: ErrInvalidRequest", func(t *testing.T) {
			srv := rpcServer()
			defer srv.Close()
			c := connect(t, srv.URL())
			for id, ok := range map[string]bool{`7`: true, `"abc"`: true, `18446744073709551615`: true, `null`: false, `true`: false, `1.5`: false, `{"a":1}`: false, `[1]`: false} {
				_, err := c.Request(ctx(t), []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"public/test","params":{}}`))
				if ok && err != nil {
					t.Errorf("id %s: %v", id, err)
				}
				if !ok && !errors.Is(err, actors.ErrInvalidRequest) {
					t.Errorf("id %s: %v, want ErrInvalidRequest", id, err)
				}
			}
		}},
		{"Call with params JSON cannot encode", "actors.ErrInvalidRequest", func(t *testing.T) {
			srv := rpcServer()
			defer srv.Close()
			_, err := connect(t, srv.URL()).Call(ctx(t), "public/test", map[string]any{"ch": make(chan int)})
			want(t, err, actors.ErrInvalidRequest)
		}},
		{"two pending requests with one id", "actors.ErrDuplicateID, nothing sent", func(t *testing.T) {
			srv := wstest.NewServer(wstest.WithEcho(false))
			defer srv.Close()
			c := connect(t, srv.URL(), actors.WithRequestTimeout(time.Second))
			go func() { _, _ = c.Request(ctx(t), []byte(`{"id":"same","method":"x"}`)) }()
			testutil.Eventually(t, 5*time.Second, "first pending", func() bool { return c.Health().Pending == 1 })
			_, err := c.Request(ctx(t), []byte(`{"id":"same","method":"x"}`))
			want(t, err, actors.ErrDuplicateID)
		}},
		{"garbage and mistyped inbound frames", "delivered by kind, client stays connected", func(t *testing.T) {
			_, got := serverSends(t, func(ctx context.Context, c *websocket.Conn) error {
				for _, f := range []string{`{"id":`, `{"id":{"x":1},"result":1}`, `{"method":"subscription","params":"no object"}`, `[]`} {
					if err := c.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
						return err
					}
				}
				return c.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2})
			})
			kinds := []actors.InboundKind{actors.KindText, actors.KindResponse, actors.KindNotification, actors.KindJSON, actors.KindBinary}
			for _, k := range kinds {
				if in := next(t, got); in.Kind != k {
					t.Fatalf("got %v (%s), want %v", in.Kind, in.Data, k)
				}
			}
		}},
		{"response to an id never issued", "delivered as KindResponse, Unmatched", func(t *testing.T) {
			_, got := serverSends(t, func(ctx context.Context, c *websocket.Conn) error {
				return c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":424242,"result":1}`))
			})
			if in := next(t, got); in.Kind != actors.KindResponse || !in.Unmatched {
				t.Fatalf("got %+v", in)
			}
		}},
		{"a handler that panics", "panic counted, connection kept", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			c := connect(t, srv.URL(), actors.WithHandler(func(actors.Inbound) { panic("handler bug") }))
			for i := 0; i < 3; i++ {
				_ = c.Send(ctx(t), []byte("boom"))
			}
			testutil.Eventually(t, 5*time.Second, "three panics counted", func() bool { return c.Health().HandlerPanics == 3 })
			if c.State() != actors.StateConnected || c.Health().Generation != 1 {
				t.Fatal("a handler panic touched the connection")
			}
		}},
		{"a handler that blocks forever", "bounded queue: drops counted; Close returns ErrTimeout within CloseWait", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			block := make(chan struct{})
			defer close(block)
			c, err := actors.Connect(ctx(t), testutil.NewSystem(t), srv.URL(), fast(
				actors.WithInboundQueue(8, 0, actors.DropNewest), func(c *actors.Config) { c.CloseWait = 300 * time.Millisecond },
				actors.WithHandler(func(actors.Inbound) { <-block }))...)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				_ = c.Send(ctx(t), []byte("x"))
			}
			testutil.Eventually(t, 5*time.Second, "overflow counted", func() bool {
				h := c.Health()
				return h.InboundDropped > 0 && h.InboundQueued <= 8
			})
			start := time.Now()
			if err := c.Close(); !errors.Is(err, actors.ErrTimeout) || time.Since(start) > 3*time.Second {
				t.Fatalf("Close with a stuck handler: %v after %v", err, time.Since(start))
			}
		}},
		{"a subscriber PID that is dead", "messages dropped and counted", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			sys := testutil.NewSystem(t)
			dead := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
			_ = sys.Root.StopFuture(dead).Wait()
			c, err := actors.Connect(ctx(t), sys, srv.URL(), fast(actors.WithSubscriber(dead))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.Send(ctx(t), []byte("x"))
			testutil.Eventually(t, 5*time.Second, "drop counted", func() bool { return c.Health().InboundDropped >= 1 })
		}},
		{"nil options and a nil handler", "ignored; defaults apply", func(t *testing.T) {
			cfg, err := actors.NewConfig("ws://127.0.0.1:1/", nil, actors.WithHandler(nil), nil)
			if err != nil || cfg.RetryCount != defaultRetryCount {
				t.Fatalf("cfg %+v err %v", cfg.RetryCount, err)
			}
		}},
		{"negative and zero durations in the config", "*ConfigError naming each field", func(t *testing.T) {
			_, err := actors.NewConfig("ws://127.0.0.1:1/", actors.WithTimeout(-1), actors.WithRequestTimeout(0), actors.WithRetryCount(-3))
			for _, f := range []string{"Timeout", "RequestTimeout", "RetryCount"} {
				if err == nil || !strings.Contains(err.Error(), f) {
					t.Fatalf("%v does not name %s", err, f)
				}
			}
			wantConfigError(t, err)
		}},
		{"Connect with a nil actor system", "an error, no panic", func(t *testing.T) {
			if _, err := actors.Connect(ctx(t), nil, "ws://127.0.0.1:1/"); err == nil {
				t.Fatal("no error")
			}
		}},
		{"Send and Call after Close", "actors.ErrClosed", func(t *testing.T) {
			srv := rpcServer()
			defer srv.Close()
			c := connect(t, srv.URL())
			_ = c.Close()
			want(t, c.Send(ctx(t), []byte("x")), actors.ErrClosed)
			_, err := c.Call(ctx(t), "public/test", nil)
			if !errors.Is(err, actors.ErrClosed) && !errors.Is(err, actors.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
		}},
		{"a handle on a PID that is no client", "actors.ErrNotFound", func(t *testing.T) {
			sys := testutil.NewSystem(t)
			c := actors.NewClient(sys, actor.NewPID("nonhost", "nobody"))
			want(t, c.Send(ctx(t), []byte("x")), actors.ErrNotFound)
			if actors.NewClient(sys, nil).Done() != nil {
				t.Fatal("a handle on a nil PID found a client")
			}
		}},

		// ---- supervisor
		{"StopClient of an unknown and of a nil PID", "supervision.ErrNotFound", func(t *testing.T) {
			s, err := supervision.Start(testutil.NewSystem(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			want(t, s.StopClient(actor.NewPID("nonhost", "nobody")), supervision.ErrNotFound)
			want(t, s.StopClient(nil), supervision.ErrNotFound)
		}},
		{"StartClient with a bad URL", "*ConfigError, no child left", func(t *testing.T) {
			s, err := supervision.Start(testutil.NewSystem(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			_, err = s.StartClient(ctx(t), "ftp://nowhere")
			wantConfigError(t, err)
			if n := len(s.ListClients()); n != 0 {
				t.Fatalf("%d clients left", n)
			}
		}},
		{"a supervisor handle on a dead PID", "supervision.ErrNotFound from every method", func(t *testing.T) {
			s := supervision.NewSupervisor(testutil.NewSystem(t), actor.NewPID("nonhost", "gone"))
			_, err := s.StartClient(ctx(t), "ws://127.0.0.1:1/")
			want(t, err, supervision.ErrNotFound)
			want(t, s.Stop(), supervision.ErrNotFound)
			if s.ListClients() != nil {
				t.Fatal("clients listed")
			}
		}},

		// ---- balancer
		{"an empty discovery", "balancer.ErrNoConnections at once", func(t *testing.T) {
			b, err := balancer.New(testutil.NewSystem(t), balancer.WithDiscovery(func() []*actor.PID { return nil }))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			want(t, b.Send(ctx(t), []byte("x")), balancer.ErrNoConnections)
		}},
		{"no discovery at all, nil options", "balancer.ErrNoConnections", func(t *testing.T) {
			b, err := balancer.New(testutil.NewSystem(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			_, err = b.Call(ctx(t), "public/test", nil)
			want(t, err, balancer.ErrNoConnections)
		}},
		{"a discovery of dead, foreign and nil PIDs", "skipped: only live clients join", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			sys := testutil.NewSystem(t)
			c, err := actors.Connect(ctx(t), sys, srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			dead, err := actors.Connect(ctx(t), sys, srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			_ = dead.Close()
			b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID {
				return []*actor.PID{nil, dead.PID(), actor.NewPID("10.1.1.1:1", "x"), c.PID()}
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			if n := len(b.PoolHealth()); n != 1 {
				t.Fatalf("%d members, want 1", n)
			}
			if err := b.Send(ctx(t), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}},
		{"a discovery that panics", "recovered: ErrNoConnections", func(t *testing.T) {
			b, err := balancer.New(testutil.NewSystem(t), balancer.WithDiscovery(func() []*actor.PID { panic("bug") }))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			want(t, b.Send(ctx(t), []byte("x")), balancer.ErrNoConnections)
		}},
		{"balancer options out of range and a nil system", "errors from New, no panic", func(t *testing.T) {
			if _, err := balancer.New(nil); err == nil {
				t.Fatal("nil system accepted")
			}
			if _, err := balancer.New(testutil.NewSystem(t), balancer.WithMaxAttempts(0)); err == nil {
				t.Fatal("MaxAttempts 0 accepted")
			}
			if _, ok := balancer.Of(nil, nil); ok {
				t.Fatal("Of(nil, nil) found a balancer")
			}
		}},
		{"a balanced Request of garbage", "actors.ErrInvalidRequest, not retried", func(t *testing.T) {
			srv := rpcServer()
			defer srv.Close()
			sys := testutil.NewSystem(t)
			c, err := actors.Connect(ctx(t), sys, srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return []*actor.PID{c.PID()} }))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			_, err = b.Request(ctx(t), []byte(`not json`), balancer.RetrySafe())
			want(t, err, actors.ErrInvalidRequest)
			if b.Stats().Failovers != 0 {
				t.Fatal("bad input was retried")
			}
		}},
		{"an RPC error object without a code", "*actors.RPCError, never success", func(t *testing.T) {
			srv := rpcServer()
			defer srv.Close()
			srv.Handle("weird", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) { return nil, &wstest.RPCError{} })
			_, err := connect(t, srv.URL()).Call(ctx(t), "weird", nil)
			var rpc *actors.RPCError
			if !errors.As(err, &rpc) {
				t.Fatalf("got %v", err)
			}
		}},
	}
	if len(rows) < 30 {
		t.Fatalf("the table has %d rows; it promises at least 30", len(rows))
	}
	runRows(t, rows)
	t.Logf("%d hostile inputs, each handled as its row says", len(rows))
}
