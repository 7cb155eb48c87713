package budget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer/cluster/budget"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// This node holds the window (the lowest member is itself): attempts are
// granted by the holder, none degrades.
func TestHeldHere(t *testing.T) {
	sys := testutil.NewSystem(t)
	s, err := budget.Start(sys, func() []*protocluster.Member { return []*protocluster.Member{{Id: sys.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	l, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: time.Minute, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := l.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats("venue@127.0.0.1"); st.Granted != 5 || st.Degraded != 0 {
		t.Fatalf("stats %+v, want 5 granted", st)
	}
}

// The holder cannot be asked (its member is at an address nothing serves):
// each attempt falls back to the local window, Burst/Share per Window.
func TestUnreachableClusterDegradesToTheLocalShare(t *testing.T) {
	sys := testutil.NewSystem(t)
	far := &protocluster.Member{Id: "0-far", Host: "127.0.0.1", Port: 1}
	s, err := budget.Start(sys, func() []*protocluster.Member { return []*protocluster.Member{far, {Id: sys.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	l, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: time.Minute, Burst: 6, Share: 3, AskTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the local share: 6/3
		if err := l.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
			t.Fatal(err)
		}
	}
	// A third within the window waits for the local share's next slot, a
	// minute away: it is still waiting when the Service stops, and then
	// refused (the limiter's own bucket, of the same share, is full).
	third := make(chan error, 1)
	go func() { third <- l.Wait(context.Background(), ratelimit.Frame{}) }()
	select {
	case err := <-third:
		t.Fatalf("a third attempt within the window went through: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s.Stop()
	if err := <-third; !errors.Is(err, ratelimit.ErrRateLimited) {
		t.Fatalf("the third attempt after Stop: %v, want ErrRateLimited", err)
	}
	if st := s.Stats("venue@127.0.0.1"); st.Degraded != 3 || st.Granted != 0 {
		t.Fatalf("stats %+v, want 3 degraded", st)
	}
}

// A client closed while it waits for its slot (a minute away) closes now:
// the wait ends with the dial's ctx. Before, Close waited for the slot.
func TestCloseEndsTheWaitForASlot(t *testing.T) {
	sys := testutil.NewSystem(t)
	s, err := budget.Start(sys, func() []*protocluster.Member { return []*protocluster.Member{{Id: sys.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	l, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: time.Minute, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
		t.Fatal(err) // the window's one slot
	}
	srv := wstest.NewServer()
	defer srv.Close()
	cfg, err := actors.NewConfig(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialLimiter = l
	c, err := actors.Spawn(sys.Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the client waiting for its slot", func() bool {
		return s.Stats("venue@127.0.0.1").Granted == 1 && c.State() == actors.StateConnecting
	})
	time.Sleep(100 * time.Millisecond) // in the wait
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the slot, a minute away")
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("the closed client dialled: %d connections", n)
	}
}
