package nodews

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

// Issue 13, life cycle: Close, ListClients, the StateChange chain, retry
// forever and pattern 3 during maintenance, against the Node.js venue. A
// venue that is down and then comes up is venue.js started late on a fixed
// port.

// closedPort returns a 127.0.0.1 port that nothing listens on (now).
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	return port
}

// venueLate starts venue.js on port and waits until it listens; the process
// is killed when the test ends.
func venueLate(t *testing.T, port string) {
	t.Helper()
	startNode(t, "venue.js", port)
}

// dialCount counts the TCP dials a client makes (Config.NetDial).
type dialCount struct{ n atomic.Int64 }

func (d *dialCount) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func lifecycleOpts(opts ...actors.Option) []actors.Option {
	return append([]actors.Option{
		actors.WithRetryDelay(10 * time.Millisecond), actors.WithMaxBackoff(50 * time.Millisecond),
		actors.WithTimeout(2 * time.Second), func(c *actors.Config) { c.StableAfter = minStableAfter },
	}, opts...)
}

// Close with a backlog: the venue echoes 200 messages to a handler that
// takes 20 ms each (4 s of work, 8 times CloseWait). Close drops the
// backlog (counted), runs OnDisconnect, returns nil, and nothing runs
// after it.
func TestCloseWithABacklogFromNodeWS(t *testing.T) {
	var returned atomic.Bool
	var handled, late, disconnects atomic.Int64
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), venue(t), lifecycleOpts(
		func(c *actors.Config) { c.CloseWait = 500 * time.Millisecond },
		actors.WithHandler(func(actors.Inbound) {
			if returned.Load() {
				late.Add(1)
			}
			handled.Add(1)
			time.Sleep(20 * time.Millisecond)
		}),
		actors.WithOnDisconnect(func(*actor.PID) {
			if returned.Load() {
				late.Add(1)
			}
			disconnects.Add(1)
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if err := c.Send(ctx(t), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "every echo routed", func() bool {
		h := c.Health()
		return handled.Load() > 0 && handled.Load()+int64(h.InboundQueued)+int64(h.InboundDropped) >= n
	})
	err = c.Close()
	returned.Store(true)
	if err != nil {
		t.Fatalf("Close with a backlog = %v, want nil", err)
	}
	if disconnects.Load() != 1 {
		t.Fatalf("OnDisconnect ran %d times before Close returned, want 1", disconnects.Load())
	}
	time.Sleep(300 * time.Millisecond)
	h := c.Health()
	t.Logf("%d delivered, %d dropped, %d calls after Close", handled.Load(), h.InboundDropped, late.Load())
	if late.Load() != 0 || handled.Load()+int64(h.InboundDropped) != n || h.InboundDropped == 0 {
		t.Fatalf("%d late calls, %d delivered + %d dropped of %d", late.Load(), handled.Load(), h.InboundDropped, n)
	}
}

// Close with a handler stuck for good: Close returns ErrTimeout at its
// bound; OnDisconnect is skipped and never runs later, nor the handler.
func TestCloseWithAStuckHandlerFromNodeWS(t *testing.T) {
	var returned atomic.Bool
	var handled, late, disconnects atomic.Int64
	release := make(chan struct{})
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), venue(t), lifecycleOpts(
		func(c *actors.Config) { c.CloseWait = 300 * time.Millisecond },
		actors.WithHandler(func(actors.Inbound) {
			if returned.Load() {
				late.Add(1)
			}
			handled.Add(1)
			<-release
		}),
		actors.WithOnDisconnect(func(*actor.PID) { disconnects.Add(1) }))...)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		_ = c.Send(ctx(t), []byte("x"))
	}
	testutil.Eventually(t, 10*time.Second, "stuck with messages queued", func() bool { return handled.Load() == 1 && c.Health().InboundQueued > 0 })
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Close hung with a stuck handler")
	}
	returned.Store(true)
	close(release)
	if !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("Close = %v, want ErrTimeout", err)
	}
	<-c.Done()
	if late.Load() != 0 || disconnects.Load() != 0 || handled.Load() != 1 {
		t.Fatalf("after Close: %d late handler calls, OnDisconnect %d, handler calls %d; want 0, 0, 1", late.Load(), disconnects.Load(), handled.Load())
	}
}

// The venue drops the connection of a client with RetryCount 0 under the
// root's restarting guardian, twice: the StateChanges stay one chain across
// both restarts (before: From=disconnected after each).
func TestStateChainAcrossRestartsWithNodeWS(t *testing.T) {
	url := venue(t)
	var mu sync.Mutex
	var seen []actors.StateChange
	cfg, err := actors.NewConfig(url, lifecycleOpts(actors.WithRetryCount(0), actors.WithStateObserver(func(sc actors.StateChange) {
		mu.Lock()
		seen = append(seen, sc)
		mu.Unlock()
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := actors.Spawn(testutil.NewSystem(t).Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		_, _ = c.Call(testutil.Context(t, time.Second), "drop", nil)
		testutil.Eventually(t, 10*time.Second, "restarted and reconnected", func() bool {
			h := c.Health()
			return h.Restarts == uint64(i) && h.State == actors.StateConnected
		})
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	prev := actors.StateDisconnected
	for i, sc := range seen {
		if sc.From != prev || sc.From == sc.To {
			t.Fatalf("change %d is %v -> %v after a change to %v (all: %+v)", i, sc.From, sc.To, prev, seen)
		}
		prev = sc.To
	}
	if prev != actors.StateDisconnected {
		t.Fatalf("the last change is to %v, want disconnected", prev)
	}
}

// Connect with RetryForever while nothing listens: it dials many more
// times than any finite RetryCount, and returns connected once the Node
// venue has started on that port.
func TestRetryForeverUntilTheNodeVenueStarts(t *testing.T) {
	port := closedPort(t)
	var dials dialCount
	type result struct {
		c   *actors.Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := actors.Connect(testutil.Context(t, 30*time.Second), testutil.NewSystem(t), "ws://127.0.0.1:"+port+"/",
			lifecycleOpts(actors.WithRetryCount(actors.RetryForever), func(c *actors.Config) { c.NetDial = dials.dial })...)
		res <- result{c, err}
	}()
	want := int64(4 * (1 + defaultRetryCount))
	testutil.Eventually(t, 20*time.Second, "many refused dials", func() bool { return dials.n.Load() >= want })
	venueLate(t, port)
	r := <-res
	if r.err != nil {
		t.Fatalf("Connect with RetryForever = %v", r.err)
	}
	defer func() { _ = r.c.Close() }()
	if res, err := r.c.Call(ctx(t), "echo", map[string]int{"x": 1}); err != nil || string(res) != `{"x":1}` {
		t.Fatalf("echo after the venue came up = %s, %v", res, err)
	}
}

// nodeParent is a user's own actor that spawns a client (pattern 3).
type nodeParent struct {
	cfg    actors.Config
	client chan *actors.Client
}

func (p *nodeParent) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		c, err := actors.Spawn(ctx, p.cfg)
		if err != nil {
			panic(err)
		}
		p.client <- c
	}
}

// Pattern 3 (a client under the user's own parent with NewStrategy) while
// the venue is down: with RetryForever it retries with backoff without
// failing to its parent; with RetryCount 1 it is restarted within its
// budget (before: stopped for good at its first give-up, having never
// connected). Both handles'
// WaitConnected return once the Node venue has started.
func TestPattern3DuringNodeVenueMaintenance(t *testing.T) {
	port := closedPort(t)
	url := "ws://127.0.0.1:" + port + "/"
	sys := testutil.NewSystem(t)
	var forever, finite dialCount
	spawn := func(budget int, dc *dialCount, opts ...actors.Option) *actors.Client {
		cfg, err := actors.NewConfig(url, lifecycleOpts(append(opts, func(c *actors.Config) { c.NetDial = dc.dial })...)...)
		if err != nil {
			t.Fatal(err)
		}
		p := &nodeParent{cfg: cfg, client: make(chan *actors.Client, 1)}
		ppid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }, actor.WithSupervisor(supervision.NewStrategy(supervision.WithRestartBudget(budget, time.Minute)))))
		t.Cleanup(func() { _ = sys.Root.StopFuture(ppid).Wait() })
		return <-p.client
	}
	a := spawn(supervision.DefaultMaxRestarts, &forever, actors.WithRetryCount(actors.RetryForever))
	// With a 10 ms backoff, RetryCount 1 fails to the parent every ~20 ms
	// until node is up: a budget that outlasts node's start-up.
	b := spawn(10000, &finite, actors.WithRetryCount(1))
	testutil.Eventually(t, 20*time.Second, "both refused many times", func() bool {
		if b.State() == actors.StateDisconnected {
			t.Fatalf("the RetryCount 1 client stopped for good during the maintenance: %v", b.Health().StopReason)
		}
		return forever.n.Load() >= 20 && finite.n.Load() >= 6
	})
	venueLate(t, port)
	for name, c := range map[string]*actors.Client{"RetryForever": a, "RetryCount 1": b} {
		if err := c.WaitConnected(ctx(t)); err != nil {
			t.Fatalf("%s: WaitConnected after the venue came up: %v", name, err)
		}
	}
	if a.Health().Restarts != 0 || b.Health().Restarts < 2 {
		t.Fatalf("restarts: RetryForever %d (want 0), RetryCount 1 %d (want at least 2)", a.Health().Restarts, b.Health().Restarts)
	}
}

// A ClientSupervisor against the Node venue: StartClient with RetryForever
// while the venue is down returns once it is up; a client closed is not
// listed by the time its OnDisconnect runs, nor when Wait returns.
func TestStartClientAndListClientsWithNodeWS(t *testing.T) {
	port := closedPort(t)
	url := "ws://127.0.0.1:" + port + "/"
	s, err := supervision.Start(testutil.NewSystem(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop() }()

	_, err = s.StartClient(ctx(t), url, lifecycleOpts(actors.WithRetryCount(2))...)
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || len(s.ListClients()) != 0 {
		t.Fatalf("StartClient while the venue is down = %v, listed %v; want a *GiveUpError, nothing listed", err, s.ListClients())
	}

	var dials dialCount
	var listedInOnDisconnect atomic.Int32
	listed := func(pid *actor.PID) bool { return slices.ContainsFunc(s.ListClients(), pid.Equal) }
	type result struct {
		c   *actors.Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := s.StartClient(testutil.Context(t, 30*time.Second), url, lifecycleOpts(actors.WithRetryCount(actors.RetryForever), func(c *actors.Config) { c.NetDial = dials.dial },
			actors.WithOnDisconnect(func(pid *actor.PID) {
				if listed(pid) {
					listedInOnDisconnect.Add(1)
				}
			}))...)
		res <- result{c, err}
	}()
	testutil.Eventually(t, 20*time.Second, "many refused dials", func() bool { return dials.n.Load() >= 20 })
	venueLate(t, port)
	r := <-res
	if r.err != nil {
		t.Fatalf("StartClient with RetryForever = %v", r.err)
	}
	c := r.c
	if !listed(c.PID()) {
		t.Fatal("the started client is not listed")
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait(ctx(t)) }()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if listed(c.PID()) || listedInOnDisconnect.Load() != 0 {
		t.Fatalf("listed after Close and Wait: %v; listed in OnDisconnect: %d", listed(c.PID()), listedInOnDisconnect.Load())
	}
}
