package review15b

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
)

func creds() deribit.Config {
	return deribit.Config{ClientID: "id", ClientSecret: "secret", AllowShortHeartbeat: true, Heartbeat: time.Second, DisableBackfill: true}
}

// spawnSession starts a client with a session without waiting for it to be
// connected (the attacks keep it from connecting).
func spawnSession(t *testing.T, p *peer, cfg deribit.Config, opts ...actors.Option) (*actors.Client, *deribit.Session) {
	t.Helper()
	s, err := deribit.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	all := append(baseOpts(), s.Options()...)
	all = append(all, opts...)
	c, err := actors.NewConfig(p.url(), all...)
	if err != nil {
		t.Fatal(err)
	}
	sys := testutil.NewSystem(t)
	cl, err := actors.Spawn(sys.Root, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close(); s.Close() })
	return cl, s
}

// An arm the venue refuses: never connected, orders refused, nothing sent.
func TestArmRefusedNeverConnectedNoOrder(t *testing.T) {
	p := newPeer(t)
	p.onReq = func(c *pconn, r rq) bool {
		if r.Method == "private/enable_cancel_on_disconnect" {
			c.refuse(r, 11050)
			return true
		}
		return false
	}
	cl, s := spawnSession(t, p, creds())
	testutil.Eventually(t, 3*time.Second, "arm attempts", func() bool { return p.count("private/enable_cancel_on_disconnect") >= 3 })
	if cl.State() == actors.StateConnected {
		t.Fatal("connected with cancel-on-disconnect refused")
	}
	_, err := s.Buy(ctx(t), map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10})
	if !errors.Is(err, deribit.ErrNotArmed) {
		t.Fatalf("Buy on unarmed: %v, want ErrNotArmed", err)
	}
	if s.Armed() || s.Stats().Arms != 0 {
		t.Fatalf("Armed %v Arms %d", s.Armed(), s.Stats().Arms)
	}
	if n := p.count("private/buy"); n != 0 {
		t.Fatalf("%d private/buy reached the venue", n)
	}
}

// An arm answered with a result that is not "ok" (an error-ish result, not a
// JSON-RPC error): the connection must not count as armed.
func TestArmWrongResult(t *testing.T) {
	for _, res := range []string{`"not ok"`, `false`, `null`, `{"error":"no"}`} {
		t.Run(res, func(t *testing.T) {
			p := newPeer(t)
			p.onReq = func(c *pconn, r rq) bool {
				if r.Method == "private/enable_cancel_on_disconnect" {
					c.result(r, res)
					return true
				}
				return false
			}
			cl, s := spawnSession(t, p, creds())
			testutil.Eventually(t, 3*time.Second, "an arm", func() bool { return p.count("private/enable_cancel_on_disconnect") >= 2 })
			time.Sleep(100 * time.Millisecond)
			if cl.State() == actors.StateConnected || s.Armed() {
				t.Errorf("arm answered %s: client connected=%v, Armed()=%v (Arms %d)", res, cl.State() == actors.StateConnected, s.Armed(), s.Stats().Arms)
			}
		})
	}
}

// An arm answered twice, and one answered late: no crash, and an order goes
// only where the venue said ok.
func TestArmTwiceAndLate(t *testing.T) {
	p := newPeer(t)
	var k atomic.Int64
	p.onReq = func(c *pconn, r rq) bool {
		if r.Method == "private/enable_cancel_on_disconnect" {
			n := k.Add(1)
			if n == 1 { // late: after the client's 2 s request timeout
				go func() { time.Sleep(2500 * time.Millisecond); c.armed.Store(true); c.result(r, `"ok"`) }()
				return true
			}
			c.armed.Store(true)
			c.result(r, `"ok"`)
			c.result(r, `"ok"`)
			return true
		}
		if r.Method == "private/buy" && !c.armed.Load() {
			p.t.Errorf("private/buy on connection %d, not armed", c.n)
		}
		return false
	}
	cl, s := spawnSession(t, p, creds())
	if err := cl.WaitConnected(testutil.Context(t, 8*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Buy(ctx(t), map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10}); err != nil {
		t.Fatal(err)
	}
}

// Orders sent as fast as possible while connections drop again and again,
// and the new connections' arms are slow: on the venue's side no
// private/buy ever arrives on a connection that was not armed.
func TestOrdersWhileDroppingNeverUnarmed(t *testing.T) {
	p := newPeer(t)
	var bad atomic.Int64
	var buys atomic.Int64
	p.onReq = func(c *pconn, r rq) bool {
		switch r.Method {
		case "private/enable_cancel_on_disconnect":
			if c.n%2 == 0 { // every other connection: refuse
				c.refuse(r, 11050)
				return true
			}
			time.Sleep(30 * time.Millisecond)
		case "private/buy":
			buys.Add(1)
			if !c.armed.Load() {
				bad.Add(1)
			}
		}
		return false
	}
	cl, s := spawnSession(t, p, creds())
	if err := cl.WaitConnected(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, notArmed, other atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := s.Buy(c, map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10})
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, deribit.ErrNotArmed):
					notArmed.Add(1)
					time.Sleep(time.Millisecond)
				default:
					other.Add(1)
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	for i := 0; i < 15; i++ {
		time.Sleep(60 * time.Millisecond)
		p.dropAll()
	}
	close(stop)
	wg.Wait()
	t.Logf("buys at venue %d; ok %d, not armed %d, other %d; arms %d", buys.Load(), ok.Load(), notArmed.Load(), other.Load(), s.Stats().Arms)
	if bad.Load() != 0 {
		t.Fatalf("%d orders arrived on connections without cancel-on-disconnect", bad.Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no order went through at all")
	}
}

// Orders during rotations whose new connection arms slowly.
func TestOrdersDuringRotation(t *testing.T) {
	p := newPeer(t)
	var bad atomic.Int64
	p.onReq = func(c *pconn, r rq) bool {
		switch r.Method {
		case "private/enable_cancel_on_disconnect":
			if c.n > 1 {
				time.Sleep(200 * time.Millisecond)
			}
		case "private/buy":
			if !c.armed.Load() {
				bad.Add(1)
			}
		}
		return false
	}
	cl, s := spawnSession(t, p, creds())
	if err := cl.WaitConnected(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var fails atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Buy(ctx(t), map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 1}); err != nil {
				fails.Add(1)
			}
		}
	}()
	for i := 0; i < 3; i++ {
		if err := cl.Rotate(testutil.Context(t, 5*time.Second)); err != nil {
			t.Errorf("rotate %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d orders on unarmed connections during rotation", bad.Load())
	}
	t.Logf("orders failed during rotations: %d", fails.Load())
}

// DisableCancelOnDisconnect: nothing armed, orders sent.
func TestDisableCancelOnDisconnect(t *testing.T) {
	p := newPeer(t)
	cfg := creds()
	cfg.DisableCancelOnDisconnect = true
	cl, s := spawnSession(t, p, cfg)
	if err := cl.WaitConnected(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Buy(ctx(t), map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 1}); err != nil {
		t.Fatal(err)
	}
	if n := p.count("private/enable_cancel_on_disconnect"); n != 0 {
		t.Fatalf("armed %d times though disabled", n)
	}
}

// Order with nil / unmarshalable params and an empty method: an error, no
// panic, nothing odd sent.
func TestOrderOddParams(t *testing.T) {
	p := newPeer(t)
	cl, s := spawnSession(t, p, creds())
	if err := cl.WaitConnected(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Order(ctx(t), "private/buy", make(chan int)); err == nil {
		t.Error("unmarshalable params: no error")
	}
	if _, err := s.Order(ctx(t), "", nil); err == nil {
		t.Logf("empty method accepted (sent %d)", p.count(""))
	}
	if _, err := s.Order(ctx(t), "private/buy", nil); err != nil {
		t.Logf("nil params: %v", err)
	}
	cl.Close()
	if _, err := s.Buy(ctx(t), map[string]any{}); !errors.Is(err, deribit.ErrNotArmed) {
		t.Errorf("after Close: %v, want ErrNotArmed", err)
	}
}
