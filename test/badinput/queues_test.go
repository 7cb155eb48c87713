package badinput

// Rows for the bounded queues and the trust in what a venue sends (issue
// 12, items 5-9, 11 and the rate-limit classifier of 14). Each row prints
// the figures it measures (go test -v -run TestHostileQueues).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// qServer is a venue written straight on coder/websocket: serve runs for
// each connection (n counts them from 1); then the server reads until the
// client goes.
func qServer(t *testing.T, serve func(ctx context.Context, c *websocket.Conn, n int)) string {
	t.Helper()
	var conns atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		// A hijacked connection's request context does not end with the
		// connection: this one ends when the client goes.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() { // read (and so answer pings and see the close) while serve writes
			defer cancel()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
		serve(ctx, c, int(conns.Add(1)))
		<-ctx.Done()
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// qFlood writes n copies of msg, stopping at the first error.
func qFlood(ctx context.Context, c *websocket.Conn, n int, msg []byte) {
	for i := 0; i < n; i++ {
		if c.Write(ctx, websocket.MessageText, msg) != nil {
			return
		}
	}
}

func qHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// qSpawn starts a client whose mailbox the test can count.
func qSpawn(t *testing.T, url string, opts ...actors.Option) (*actors.Client, func() int) {
	t.Helper()
	cfg, err := actors.NewConfig(url, fast(opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	sys := testutil.NewSystem(t)
	var mu sync.Mutex
	var mb actor.Mailbox
	props := actors.Props(cfg).Configure(actor.WithMailbox(func() actor.Mailbox {
		m := actor.Unbounded()()
		mu.Lock()
		mb = m
		mu.Unlock()
		return m
	}))
	pid := sys.Root.Spawn(props)
	testutil.Eventually(t, 5*time.Second, "the client started", func() bool { return actors.NewClient(sys, pid).Done() != nil })
	c := actors.NewClient(sys, pid)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return c, func() int {
		mu.Lock()
		defer mu.Unlock()
		return mb.UserMessageCount()
	}
}

// blockingCore is a zap core (user code: a log sink) that blocks the
// goroutine writing the entry named block until release is closed.
type blockingCore struct {
	block   string
	release chan struct{}
	hit     chan struct{}
	once    *sync.Once
}

func (c blockingCore) Enabled(zapcore.Level) bool        { return true }
func (c blockingCore) With([]zapcore.Field) zapcore.Core { return c }
func (c blockingCore) Sync() error                       { return nil }
func (c blockingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}
func (c blockingCore) Write(e zapcore.Entry, _ []zapcore.Field) error {
	if e.Message == c.block {
		c.once.Do(func() { close(c.hit) })
		<-c.release
	}
	return nil
}

func TestHostileQueues(t *testing.T) {
	rows := []row{
		{"5: 1 MiB messages at a stuck handler", "inbound queue bounded in bytes (64 MiB): drops counted, heap bounded", func(t *testing.T) {
			const n, size = 160, 1 << 20
			msg := []byte(strings.Repeat("x", size))
			url := qServer(t, func(ctx context.Context, c *websocket.Conn, _ int) { qFlood(ctx, c, n, msg) })
			block := make(chan struct{})
			defer close(block)
			before := qHeap()
			c := connect(t, url, func(c *actors.Config) { c.CloseWait = 200 * time.Millisecond }, actors.WithHandler(func(actors.Inbound) { <-block }))
			testutil.Eventually(t, 20*time.Second, "every message read", func() bool { return c.Health().MessagesIn >= n })
			grew := int64(qHeap()) - int64(before)
			h := c.Health()
			t.Logf("%d x 1 MiB at a stuck handler: heap +%.0f MiB, %d queued, %d dropped", n, mib(grew), h.InboundQueued, h.InboundDropped)
			if h.InboundDropped < n-64-1 || h.InboundQueued > 64 {
				t.Fatalf("queued %d, dropped %d: the queue is not bounded at 64 MiB", h.InboundQueued, h.InboundDropped)
			}
			if h.InboundQueuedBytes > defaultInboundQueueBytes {
				t.Fatalf("%d bytes queued", h.InboundQueuedBytes)
			}
			if grew > 120<<20 { // 64 MiB queued, up to 16 MiB in flight to the actor, buffers
				t.Fatalf("heap grew %.0f MiB; the byte bound is 64 MiB", mib(grew))
			}
		}},
		{"5: one message larger than the byte bound", "delivered when the queue is empty", func(t *testing.T) {
			url := qServer(t, func(ctx context.Context, c *websocket.Conn, _ int) {
				qFlood(ctx, c, 1, []byte(strings.Repeat("y", 4096)))
			})
			got := make(chan int, 1)
			opts := []actors.Option{actors.WithHandler(func(in actors.Inbound) { got <- len(in.Data) })}
			opts = append(opts, actors.WithInboundQueue(0, 1024, actors.DropNewest))
			connect(t, url, opts...)
			select {
			case n := <-got:
				if n != 4096 {
					t.Fatalf("delivered %d bytes", n)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the message was not delivered")
			}
		}},
		{"6a: a StateObserver that blocks, and a flood of frames", "the actor carries on: frames delivered, mailbox bounded", func(t *testing.T) {
			const n = 50_000
			msg := []byte(`{"e":"trade","p":"` + strings.Repeat("1", 1000) + `"}`)
			start := make(chan struct{})
			url := qServer(t, func(ctx context.Context, c *websocket.Conn, _ int) {
				select {
				case <-start:
				case <-ctx.Done():
				}
				qFlood(ctx, c, n, msg)
			})
			block := make(chan struct{})
			defer close(block)
			var delivered atomic.Int64
			before := qHeap()
			c, mailbox := qSpawn(t, url, func(c *actors.Config) { c.CloseWait = 200 * time.Millisecond },
				actors.WithHandler(func(actors.Inbound) { delivered.Add(1) }),
				actors.WithStateObserver(func(sc actors.StateChange) {
					if sc.To == actors.StateConnected {
						<-block
					}
				}))
			close(start)
			testutil.Eventually(t, 20*time.Second, "every frame read", func() bool { return c.Health().MessagesIn >= n })
			time.Sleep(200 * time.Millisecond)
			grew := int64(qHeap()) - int64(before)
			t.Logf("%d frames of 1 KiB, observer stuck: mailbox %d, delivered %d, heap +%.1f MiB", n, mailbox(), delivered.Load(), mib(grew))
			if m := mailbox(); m > 1100 {
				t.Fatalf("mailbox holds %d messages", m)
			}
			if delivered.Load() < 1000 {
				t.Fatalf("%d frames delivered: the observer stalled the actor", delivered.Load())
			}
		}},
		{"6b: an actor stalled (a stuck log sink), and a flood of frames", "frames into the actor bounded (1024 / 16 MiB): the reader waits", func(t *testing.T) {
			const n = 10_000 // ten times the bound; more only slows a loaded -race run
			msg := []byte(`{"e":"trade","p":"` + strings.Repeat("1", 1000) + `"}`)
			start := make(chan struct{})
			url := qServer(t, func(ctx context.Context, c *websocket.Conn, _ int) {
				select {
				case <-start:
				case <-ctx.Done():
				}
				qFlood(ctx, c, n, msg)
			})
			core := blockingCore{block: "connected", release: make(chan struct{}), hit: make(chan struct{}), once: new(sync.Once)}
			released := false
			release := func() {
				if !released {
					released = true
					close(core.release)
				}
			}
			defer release()
			before := qHeap()
			c, mailbox := qSpawn(t, url, func(c *actors.Config) { c.CloseWait = 2 * time.Second }, actors.WithLogger(zap.New(core)),
				actors.WithHandler(func(actors.Inbound) {}))
			select { // the actor is stuck in the log sink
			case <-core.hit:
			case <-time.After(5 * time.Second):
				t.Fatal("the actor never logged connected")
			}
			close(start)
			testutil.Eventually(t, 20*time.Second, "the reader stopped or read everything", func() bool {
				m := c.Health().MessagesIn
				time.Sleep(300 * time.Millisecond)
				return c.Health().MessagesIn == m && m > 0
			})
			grew := int64(qHeap()) - int64(before)
			in, mb := c.Health().MessagesIn, mailbox()
			t.Logf("%d frames of 1 KiB at a stuck actor: read %d, mailbox %d, heap +%.1f MiB", n, in, mb, mib(grew))
			if mb > 1100 {
				t.Fatalf("mailbox holds %d messages: frames into the actor are not bounded", mb)
			}
			release()
			testutil.Eventually(t, 60*time.Second, "the rest read once the actor runs", func() bool { return c.Health().MessagesIn >= n })
		}},
		{"7: a confirmation naming 10,000 channels never asked", "only the asked channel joins the set and the restore", func(t *testing.T) {
			srv := wstest.NewServer(wstest.WithDeribit())
			defer srv.Close()
			extra := make([]string, 10_000)
			for i := range extra {
				extra[i] = "evil." + itoa(i)
			}
			srv.Handle("public/subscribe", func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
				var p struct{ Channels []string }
				_ = json.Unmarshal(params, &p)
				c.Subscribe(p.Channels...)
				return append(append([]string{}, p.Channels...), extra...), nil
			})
			c := connect(t, srv.URL())
			if err := c.Subscribe(ctx(t), "ticker.BTC"); err != nil {
				t.Fatal(err)
			}
			if got := c.Subscriptions(); len(got) != 1 || got[0] != "ticker.BTC" {
				t.Fatalf("the set has %d channels", len(got))
			}
			if h := c.Health(); h.ConfirmationsIgnored != uint64(len(extra)) {
				t.Fatalf("ConfirmationsIgnored %d", h.ConfirmationsIgnored)
			}
			srv.DropAll()
			testutil.Eventually(t, 5*time.Second, "reconnected", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
			conns, err := srv.WaitConns(ctx(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			m, err := conns[0].WaitRequest(ctx(t), "public/subscribe")
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Data) > 200 {
				t.Fatalf("the restore request is %d bytes: %.100s", len(m.Data), m.Data)
			}
		}},
		{"7: an unsubscribe confirmed for another channel", "removes nothing it was not asked to", func(t *testing.T) {
			srv := wstest.NewServer(wstest.WithDeribit())
			defer srv.Close()
			srv.Handle("public/unsubscribe", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
				return []string{"book.ETH"}, nil
			})
			c := connect(t, srv.URL())
			if err := c.Subscribe(ctx(t), "ticker.BTC", "book.ETH"); err != nil {
				t.Fatal(err)
			}
			// The unsubscribe is not confirmed: an error, retried; the
			// channel the venue named is not touched.
			if err := c.Unsubscribe(ctx(t), "ticker.BTC"); err == nil {
				t.Fatal("an unsubscribe the venue did not confirm returned nil")
			}
			if got := c.Subscriptions(); len(got) != 1 || got[0] != "book.ETH" {
				t.Fatalf("wanted after the unsubscribe: %v", got)
			}
			h := c.Health()
			if len(h.Channels) != 2 || h.Channels[0].Channel != "book.ETH" || h.Channels[0].State != actors.ChannelActive ||
				h.Channels[1].Channel != "ticker.BTC" || h.Channels[1].Wanted || h.Channels[1].State != actors.ChannelFailed {
				t.Fatalf("after a confirmation for the wrong channel: %+v", h.Channels)
			}
		}},
		{"8: Deribit expires_in of 1e-9, 0.001, 1e19, 9.3e9", "refresh clamped to >= 10 s: one public/auth per connection, no storm", func(t *testing.T) {
			for _, exp := range []float64{1e-9, 0.001, 1e19, 9.3e9} {
				srv := wstest.NewServer(wstest.WithDeribit())
				var auths atomic.Int64
				srv.Handle("public/auth", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
					auths.Add(1)
					return map[string]any{"access_token": "tok", "refresh_token": "ref", "expires_in": exp, "token_type": "bearer"}, nil
				})
				c, s, err := deribit.Connect(ctx(t), testutil.NewSystem(t), srv.URL(), deribit.Config{ClientID: "id", ClientSecret: "secret", DisableCancelOnDisconnect: true}, fast()...)
				if err != nil {
					srv.Close()
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				n := auths.Load()
				st := s.Stats()
				_ = st
				s.Close()
				_ = c.Close()
				srv.Close()
				t.Logf("expires_in %g: %d public/auth in the first second", exp, n)
				t.Logf("expires_in %g: %d clamped", exp, st.Clamped)
				if n > 2 {
					t.Fatalf("expires_in %g: %d public/auth calls in a second", exp, n)
				}
				if st.Clamped < 1 {
					t.Fatalf("expires_in %g: clamp not counted", exp)
				}
			}
		}},
		{"9: 100,000 Deribit test_requests never answered", "one answer in flight per connection: goroutines and pending bounded", func(t *testing.T) {
			const n = 100_000
			tr := []byte(`{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}`)
			start := make(chan struct{})
			url := qServer(t, func(ctx context.Context, c *websocket.Conn, _ int) {
				select {
				case <-start:
				case <-ctx.Done():
				}
				qFlood(ctx, c, n, tr) // and never answers public/test
			})
			c := connect(t, url, actors.WithHeartbeat(actors.HeartbeatDeribit, 20*time.Second), func(c *actors.Config) { c.CloseWait = 2 * time.Second })
			g0, h0 := runtime.NumGoroutine(), qHeap()
			close(start)
			testutil.Eventually(t, 30*time.Second, "every test_request read", func() bool { return c.Health().MessagesIn >= n })
			time.Sleep(100 * time.Millisecond)
			g1, h1 := runtime.NumGoroutine(), qHeap()
			h := c.Health()
			t.Logf("%d test_requests: goroutines %d -> %d, heap +%.1f MiB, pending %d", n, g0, g1, mib(int64(h1)-int64(h0)), h.Pending)
			t.Logf("coalesced %d", h.TestRequestsCoalesced)
			if h.Pending > 2 || g1-g0 > 20 {
				t.Fatalf("pending %d, goroutines +%d: one answer per test_request", h.Pending, g1-g0)
			}
			if h.TestRequestsCoalesced < n-2 {
				t.Fatalf("coalesced %d", h.TestRequestsCoalesced)
			}
		}},
		{"11: a ping flood against a client with ratelimit.Binance()", "debt bounded (Send not locked out); flood -> ErrPingFlood, reconnect", func(t *testing.T) {
			floodOver := make(chan struct{})
			url := qServer(t, func(ctx context.Context, c *websocket.Conn, n int) {
				if n != 1 {
					return // later connections are quiet
				}
				defer close(floodOver)
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // unchecked, it would last forever
				defer cancel()
				for ctx.Err() == nil {
					if c.Ping(ctx) != nil {
						return
					}
				}
			})
			lim := ratelimit.Binance()
			c := connect(t, url, actors.WithRateLimiter(lim, actors.RateWait))
			select {
			case <-floodOver:
			case <-time.After(10 * time.Second):
				t.Fatal("the flood did not end")
			}
			testutil.Eventually(t, 5*time.Second, "reconnected after the flood", func() bool {
				h := c.Health()
				return h.PingFloods >= 1 && h.Generation >= 2 && h.State == actors.StateConnected
			})
			st := lim.Stats()
			t.Logf("ping flood: %d pongs charged, bucket at %.0f tokens, generation %d, last error %v",
				st.Charged, lim.Tokens(0), c.Health().Generation, c.Health().LastError)
			t.Logf("%d pongs forgiven", st.Forgiven)
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Send(sctx, []byte(`{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}`)); err != nil {
				t.Fatalf("Send after a ping flood: %v", err)
			}
			if !errors.Is(c.Health().LastError, actors.ErrPingFlood) || c.Health().Generation < 2 {
				t.Fatalf("last error %v, generation %d: the flood did not end the connection", c.Health().LastError, c.Health().Generation)
			}
		}},
		{"14: a rate-limit Classifier that panics", "typed error from Send, the client lives", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			for _, p := range []actors.RatePolicy{actors.RateWait, actors.RateReject} {
				lim, err := ratelimit.New("buggy", func(ratelimit.Frame) (int, int) { panic("classifier bug") }, ratelimit.Bucket{Name: "b", Rate: 10, Burst: 10})
				if err != nil {
					t.Fatal(err)
				}
				c := connect(t, srv.URL(), actors.WithRateLimiter(lim, p), actors.WithHeartbeat(actors.HeartbeatPingPong, 50*time.Millisecond))
				for i := 0; i < 3; i++ {
					err = c.Send(ctx(t), []byte("x"))
					if err == nil || errors.Is(err, actors.ErrRateLimited) {
						t.Fatalf("policy %v: Send with a panicking classifier: %v", p, err)
					}
				}
				if !errors.Is(err, ratelimit.ErrClassifierPanicked) {
					t.Fatalf("policy %v: %v, want ErrClassifierPanicked", p, err)
				}
				time.Sleep(300 * time.Millisecond) // pings (charged) go out meanwhile
				if h := c.Health(); c.State() != actors.StateConnected || h.Generation != 1 || h.Restarts != 0 {
					t.Fatalf("policy %v: state %v, generation %d, restarts %d: the client did not live on", p, c.State(), h.Generation, h.Restarts)
				}
			}
		}},
	}
	runRows(t, rows)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
