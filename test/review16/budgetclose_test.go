package review16

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/budget"
	"github.com/zenws/zenws/transport/wstest"
)

// TestCloseWhileWaitingForABudgetSlot: with more clients than the shared
// budget's Burst, a client's first dial waits for a slot a window ahead
// (Binance: up to 5 minutes a window). Closing it meanwhile (a shutdown,
// a pod's termination) must return promptly and must not dial afterwards.
// docs/balancing.md admits "a client closed while it waits finishes
// closing when its slot comes"; here the window is 3 s.
func TestCloseWhileWaitingForABudgetSlot(t *testing.T) {
	sys := quietSystem(t)
	svc, err := budget.Start(sys, holderHere(sys))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	lim, err := svc.Limiter(budget.Rule{Key: "venue@198.51.100.6", Window: 3 * time.Second, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	px := newLinkProxy(t, srv.Addr())
	spawn := func() *actors.Client {
		cfg, err := actors.NewConfig("ws://"+px.addr()+"/", actors.WithRetryCount(actors.RetryForever))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DialLimiter = lim
		c, err := actors.Spawn(sys.Root, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := spawn()
	t.Cleanup(func() { _ = a.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	b := spawn() // its dial waits for the next window
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	err = b.Close()
	took := time.Since(start)
	time.Sleep(4 * time.Second) // past b's slot
	dials := px.accepted.Load()
	t.Logf("b.Close: %v after %v; connections to the venue: %d", err, took.Round(time.Millisecond), dials)
	if took > time.Second || errors.Is(err, actors.ErrTimeout) {
		t.Errorf("Close of a client waiting for its budget slot took %v (%v)", took.Round(time.Millisecond), err)
	}
	if dials != 1 {
		t.Errorf("the venue saw %d connections; the closed client dialled when its slot came", dials)
	}
}
