package supervision_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

// A venue that accepts and drops after 50 ms: every connection counts
// against the attempts (none is stable), so the client gives up, its
// restart budget engages and it is stopped for good (before: the backoff
// reset on every 101 and the client redialled forever, never failing to
// the supervisor).
func TestAcceptThenDropSpendsTheRestartBudget(t *testing.T) {
	venue := testutil.NewFlappy(t, 50*time.Millisecond)
	sys := newSystem(t)
	ev := watch(t, sys)
	const budget, retries = 2, 2
	s := start(t, sys, supervision.WithRestartBudget(budget, time.Minute))
	c, err := s.StartClient(ctxT(t, 5*time.Second), venue.URL(), actors.WithRetryDelay(10*time.Millisecond),
		actors.WithMaxBackoff(50*time.Millisecond), actors.WithRetryCount(retries), func(c *actors.Config) { c.StableAfter = time.Second })
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the budget to stop the client", func() bool { return count[*supervision.ClientGaveUp](ev) == 1 })
	<-c.Done()
	// (1 + RetryCount) dials per instance, budget+1 instances.
	if n, limit := venue.Upgrades(), (1+retries)*(1+budget); n > limit || count[*supervision.ClientRestarted](ev) != budget {
		t.Fatalf("%d connections (want at most %d), %d restarts", n, limit, count[*supervision.ClientRestarted](ev))
	}
	if len(s.ListClients()) != 0 {
		t.Fatal("the client is still listed")
	}
}

var nilCtx context.Context

// StartClient and SendBalanced with a nil ctx fail with ErrNilContext and
// leave nothing behind (before: StartClient(nil) panicked after spawning a
// connected child nobody held).
func TestNilContextStartsNothing(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	s := start(t, newSystem(t))
	if c, err := s.StartClient(nilCtx, srv.URL()); !errors.Is(err, actors.ErrNilContext) || c != nil {
		t.Fatalf("StartClient(nil) = %v, %v", c, err)
	}
	if err := s.SendBalanced(nilCtx, []byte("x")); !errors.Is(err, actors.ErrNilContext) {
		t.Fatalf("SendBalanced(nil) = %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := srv.TotalConns(); n != 0 || len(s.ListClients()) != 0 {
		t.Fatalf("%d connections, %d clients left behind", n, len(s.ListClients()))
	}
}
