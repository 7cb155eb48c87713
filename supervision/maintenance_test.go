package supervision_test

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

// spawnUnderOwnParent starts a user's own parent (pattern 3) with
// NewStrategy, which spawns a client for url with opts, and returns the
// client's handle.
func spawnUnderOwnParent(t *testing.T, sys *actor.ActorSystem, url string, opts ...actors.Option) *actors.Client {
	t.Helper()
	cfg, err := actors.NewConfig(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p := &venueParent{cfg: cfg, client: make(chan *actors.Client, 1)}
	props := actor.PropsFromProducer(func() actor.Actor { return p }, actor.WithSupervisor(supervision.NewStrategy()))
	ppid := sys.Root.Spawn(props)
	t.Cleanup(func() { _ = sys.Root.StopFuture(ppid).Wait() })
	select {
	case c := <-p.client:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the parent did not spawn its client")
		return nil
	}
}

// maintenance refuses handshakes with 503 until the server has refused at
// least n, then lets them through; it fails when c (if not nil) stops for
// good meanwhile.
func maintenance(t *testing.T, srv *wstest.Server, n int, c *actors.Client) {
	t.Helper()
	eventually(t, 20*time.Second, "the client to be refused during the maintenance", func() bool {
		if c != nil && c.State() == actors.StateDisconnected {
			t.Fatalf("the client stopped for good during the maintenance after %d refusals: %v", srv.RefusedHandshakes(), c.Health().StopReason)
		}
		return srv.RefusedHandshakes() >= n
	})
	srv.RefuseHandshakes(0)
}

// Pattern 3, venue down at start, RetryForever: the client keeps retrying
// with backoff through the maintenance (many more refusals than any finite
// RetryCount), never fails to its parent, and its handle's WaitConnected
// returns once the venue is up.
func TestPattern3StartsDuringMaintenanceWithRetryForever(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(503)
	sys := newSystem(t)
	ev := watch(t, sys)
	c := spawnUnderOwnParent(t, sys, srv.URL(), actors.WithRetryCount(actors.RetryForever),
		actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(50*time.Millisecond))
	const refusals = 30
	maintenance(t, srv, refusals, c)
	if err := c.WaitConnected(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("WaitConnected after the maintenance: %v", err)
	}
	if h := c.Health(); h.Restarts != 0 || count[*supervision.ClientRestarted](ev) != 0 || count[*supervision.ClientGaveUp](ev) != 0 {
		t.Fatalf("%d restarts, %d restart and %d give-up events: RetryForever should never fail to the parent",
			h.Restarts, count[*supervision.ClientRestarted](ev), count[*supervision.ClientGaveUp](ev))
	}
}

// Pattern 3, venue down at start, a finite RetryCount: before, NewStrategy
// stopped a client that had never connected for good at its first give-up
// (the rule StartClient needs); now it is restarted within the budget, its
// backoff carried on, and connects once the venue is up.
func TestPattern3NeverConnectedClientIsRestartedNotStopped(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(503)
	sys := newSystem(t)
	c := spawnUnderOwnParent(t, sys, srv.URL(), actors.WithRetryCount(1),
		actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(50*time.Millisecond))
	maintenance(t, srv, 6, c) // 3 give-ups of 2 attempts each
	if err := c.WaitConnected(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("WaitConnected after the maintenance: %v (stop reason %v)", err, c.Health().StopReason)
	}
	if h := c.Health(); h.Restarts < 2 {
		t.Fatalf("%d restarts, want at least 2 during the maintenance", h.Restarts)
	}
}

// StartClient against a venue down at start: with a finite RetryCount it
// returns the *GiveUpError and lists nothing; with RetryForever it returns
// a connected client once the venue is up, within its ctx.
func TestStartClientDuringMaintenance(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(503)
	s := start(t, newSystem(t))
	_, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast(actors.WithRetryCount(2))...)
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || len(s.ListClients()) != 0 {
		t.Fatalf("StartClient with RetryCount 2 during maintenance = %v, listed %v; want a *GiveUpError, nothing listed", err, s.ListClients())
	}
	type result struct {
		c   *actors.Client
		err error
	}
	res := make(chan result, 1)
	before := srv.RefusedHandshakes()
	go func() {
		c, err := s.StartClient(ctxT(t, 20*time.Second), srv.URL(), fast(actors.WithRetryCount(actors.RetryForever))...)
		res <- result{c, err}
	}()
	maintenance(t, srv, before+30, nil)
	r := <-res
	if r.err != nil || r.c.State() != actors.StateConnected {
		t.Fatalf("StartClient with RetryForever = %v", r.err)
	}
	if l := s.ListClients(); len(l) != 1 || !l[0].Equal(r.c.PID()) {
		t.Fatalf("ListClients = %v", l)
	}
}
