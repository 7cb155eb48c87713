package review13

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

// After Close returns no handler, callback or observer call starts, and
// Close is bounded by CloseWait with a stuck handler.
func TestCloseWithStuckHandler(t *testing.T) {
	v := newVenue(t, false)
	release := make(chan struct{})
	var calls, disc, obsAfter atomic.Int64
	var closed atomic.Bool
	var relOnce sync.Once
	defer relOnce.Do(func() { close(release) })
	started := make(chan struct{}, 1)
	c := connect(t, v,
		func(c *actors.Config) { c.CloseWait = 200 * time.Millisecond },
		actors.WithHandler(func(in actors.Inbound) {
			calls.Add(1)
			select {
			case started <- struct{}{}:
				<-release // the first call is stuck
			default:
			}
		}),
		actors.WithOnDisconnect(func(*actor.PID) { disc.Add(1) }),
		actors.WithStateObserver(func(actors.StateChange) {
			if closed.Load() {
				obsAfter.Add(1)
			}
		}))
	for i := 0; i < 200; i++ {
		v.push(fmt.Sprintf(`{"n":%d}`, i))
	}
	<-started
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	err := c.Close()
	closed.Store(true)
	took := time.Since(start)
	atReturn, discAtReturn := calls.Load(), disc.Load()
	if !errors.Is(err, actors.ErrTimeout) {
		t.Errorf("Close with a stuck handler: want ErrTimeout, got %v", err)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("Close took %v with CloseWait 200ms", took)
	}
	relOnce.Do(func() { close(release) })
	time.Sleep(700 * time.Millisecond)
	if n := calls.Load(); n != atReturn {
		t.Errorf("handler called %d times after Close returned", n-atReturn)
	}
	if d := disc.Load(); d != discAtReturn {
		t.Errorf("OnDisconnect ran after Close returned (%d -> %d)", discAtReturn, d)
	}
	if obsAfter.Load() != 0 {
		t.Errorf("StateObserver called %d times after Close returned", obsAfter.Load())
	}
	if h := c.Health(); h.InboundDropped == 0 {
		t.Errorf("backlog not counted as dropped: %+v", h.InboundDropped)
	}
	if err := c.Close(); !errors.Is(err, actors.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	ctx := testutil.Context(t, 3*time.Second)
	if err := c.Subscribe(ctx, "x"); !errors.Is(err, actors.ErrClosed) {
		t.Errorf("Subscribe after Close: want ErrClosed, got %v", err)
	}
	// Found by review (fixed): Unsubscribe on a closed client returns nil (as if applied);
	// client.md's table says "the client stopped: ErrClosed", and every other
	// method of a closed client (Send, Subscribe) returns ErrClosed.
	if err := c.Unsubscribe(ctx, "x"); !errors.Is(err, actors.ErrClosed) {
		t.Errorf("Unsubscribe after Close: want ErrClosed, got %v", err)
	}
}

// Close racing a flood and concurrent Subscribes: OnDisconnect exactly once,
// before Close returns, nothing after.
func TestCloseRace(t *testing.T) {
	for i := 0; i < 5; i++ {
		v := newVenue(t, false)
		var calls, disc atomic.Int64
		var closed atomic.Bool
		var late atomic.Int64
		c := connect(t, v,
			actors.WithHandler(func(actors.Inbound) {
				calls.Add(1)
				if closed.Load() {
					late.Add(1)
				}
				time.Sleep(time.Millisecond)
			}),
			actors.WithOnDisconnect(func(*actor.PID) {
				disc.Add(1)
				if closed.Load() {
					late.Add(1)
				}
			}))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				v.push(`{"x":1}`)
			}
		}()
		go func() {
			defer wg.Done()
			ctx := testutil.Context(t, 5*time.Second)
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = c.Subscribe(ctx, fmt.Sprintf("s.%d", j%50))
				_ = c.Unsubscribe(ctx, fmt.Sprintf("s.%d", (j+25)%50))
			}
		}()
		time.Sleep(150 * time.Millisecond)
		err := c.Close()
		closed.Store(true)
		if err != nil {
			t.Errorf("Close: %v", err)
		}
		if disc.Load() != 1 {
			t.Errorf("OnDisconnect ran %d times before Close returned", disc.Load())
		}
		time.Sleep(100 * time.Millisecond)
		close(stop)
		wg.Wait()
		if late.Load() != 0 {
			t.Errorf("%d calls after Close returned", late.Load())
		}
	}
}

func contains(pids []*actor.PID, p *actor.PID) bool {
	for _, q := range pids {
		if q.Equal(p) {
			return true
		}
	}
	return false
}

// ListClients after a failed StartClient, inside OnDisconnect and after Wait.
func TestListClientsConsistency(t *testing.T) {
	v := newVenue(t, false)
	sys := testutil.NewSystem(t)
	sup, err := supervision.Start(sys)
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Stop()
	ctx := testutil.Context(t, 20*time.Second)
	v.down.Store(true)
	for i := 0; i < 10; i++ {
		_, err := sup.StartClient(ctx, v.url, actors.WithRetryCount(0), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
		if err == nil {
			t.Fatal("StartClient against a down venue succeeded")
		}
		if n := len(sup.ListClients()); n != 0 {
			t.Fatalf("attempt %d: failed StartClient still listed (%d)", i, n)
		}
	}
	// a fatal handshake (401)
	v.down.Store(false)
	v.status.Store(401)
	_, err = sup.StartClient(ctx, v.url, actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	var fe *actors.FatalError
	if !errors.As(err, &fe) {
		t.Errorf("401: want FatalError, got %v", err)
	}
	if n := len(sup.ListClients()); n != 0 {
		t.Errorf("failed (fatal) StartClient still listed (%d)", n)
	}
	v.status.Store(0)
	// ctx ending while connecting
	v.down.Store(true)
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = sup.StartClient(sctx, v.url, append(baseOpts(), actors.WithRetryCount(actors.RetryForever))...)
	cancel()
	if err == nil {
		t.Error("StartClient with an ended ctx succeeded")
	}
	if n := len(sup.ListClients()); n != 0 {
		t.Errorf("StartClient ended by ctx: still listed (%d)", n)
	}
	v.down.Store(false)

	// OnDisconnect and Wait see the client gone.
	for _, how := range []string{"Close", "StopClient", "lost+noreconnect"} {
		var inDisc atomic.Int32 // 1 listed, 2 not listed
		var c *actors.Client
		var cm sync.Mutex
		opts := append(baseOpts(), actors.WithOnDisconnect(func(p *actor.PID) {
			cm.Lock()
			defer cm.Unlock()
			if contains(sup.ListClients(), p) {
				inDisc.Store(1)
			} else {
				inDisc.Store(2)
			}
		}))
		if how == "lost+noreconnect" {
			opts = append(opts, actors.WithReconnectOnError(false))
		}
		cm.Lock()
		c, err = sup.StartClient(ctx, v.url, opts...)
		cm.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if !contains(sup.ListClients(), c.PID()) {
			t.Fatalf("%s: started client not listed", how)
		}
		switch how {
		case "Close":
			_ = c.Close()
		case "StopClient":
			_ = sup.StopClient(c.PID())
		default:
			// The venue registers a connection a moment after the client
			// sees the handshake: drop it once it is there.
			testutil.Eventually(t, 2*time.Second, "the venue has the connection", func() bool { return len(v.liveConns()) > 0 })
			v.dropAll()
		}
		wctx, wc := context.WithTimeout(ctx, 3*time.Second)
		werr := c.Wait(wctx)
		wc()
		if werr != nil {
			t.Errorf("%s: Wait %v", how, werr)
		}
		if contains(sup.ListClients(), c.PID()) {
			t.Errorf("%s: still listed after Wait returned", how)
		}
		if inDisc.Load() != 2 {
			t.Errorf("%s: in OnDisconnect ListClients state=%d (want 2: not listed)", how, inDisc.Load())
		}
	}
}

// One chain of state changes across supervisor restarts.
func TestStateChainAcrossRestarts(t *testing.T) {
	v := newVenue(t, false)
	sys := testutil.NewSystem(t)
	sup, err := supervision.Start(sys, supervision.WithRestartBudget(20, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Stop()
	var mu sync.Mutex
	var chain []actors.StateChange
	ctx := testutil.Context(t, 20*time.Second)
	c, err := sup.StartClient(ctx, v.url,
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0),
		actors.WithRetryCount(0), actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(50*time.Millisecond),
		actors.WithStateObserver(func(sc actors.StateChange) { mu.Lock(); chain = append(chain, sc); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "chain.1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := c.Health().Restarts
		v.dropAll()
		eventually(t, 5*time.Second, "restarted and reconnected", func() bool {
			return c.Health().Restarts > r && c.State() == actors.StateConnected
		})
	}
	// once with the venue down during the restart
	v.down.Store(true)
	r := c.Health().Restarts
	v.dropAll()
	eventually(t, 5*time.Second, "restarted twice", func() bool { return c.Health().Restarts >= r+2 })
	v.down.Store(false)
	eventually(t, 10*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })
	if s := v.newestSubs(); !s["chain.1"] {
		t.Errorf("wanted set not restored after restarts: %v", s)
	}
	_ = sup.StopClient(c.PID())
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(chain) == 0 {
		t.Fatal("no changes")
	}
	if chain[0].From != actors.StateDisconnected || chain[0].To != actors.StateConnecting {
		t.Errorf("first change %v -> %v", chain[0].From, chain[0].To)
	}
	for i := 1; i < len(chain); i++ {
		if chain[i].From != chain[i-1].To {
			t.Errorf("break at %d: previous To=%v, From=%v", i, chain[i-1].To, chain[i].From)
		}
		if chain[i].From == chain[i].To {
			t.Errorf("self transition at %d: %v", i, chain[i].To)
		}
	}
	if last := chain[len(chain)-1]; last.To != actors.StateDisconnected {
		t.Errorf("last change To=%v", last.To)
	}
	var s string
	for _, sc := range chain {
		s += fmt.Sprintf("%v>%v ", sc.From, sc.To)
	}
	t.Logf("chain: %s", s)
}

type owner struct {
	cfg    actors.Config
	client chan *actors.Client
}

func (o *owner) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		c, err := actors.Spawn(ctx, o.cfg)
		if err != nil {
			panic(err)
		}
		o.client <- c
	}
}

// Pattern 3 with RetryForever while the venue is down: keeps trying, spends
// no budget, shows Attempt/NextRetry/LastError, connects once the venue is up.
func TestRetryForeverUnderOwnParent(t *testing.T) {
	v := newVenue(t, false)
	v.down.Store(true)
	sys := testutil.NewSystem(t)
	var restarts atomic.Int64
	sub := sys.EventStream.Subscribe(func(evt any) {
		switch evt.(type) {
		case *supervision.ClientRestarted, *supervision.ClientGaveUp:
			restarts.Add(1)
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	cfg, err := actors.NewConfig(v.url, baseOpts(actors.WithRetryCount(actors.RetryForever), actors.WithLabel("p3"))...)
	if err != nil {
		t.Fatal(err)
	}
	o := &owner{cfg: cfg, client: make(chan *actors.Client, 1)}
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return o },
		actor.WithSupervisor(supervision.NewStrategy(supervision.WithRestartBudget(2, time.Minute)))))
	defer func() { _ = sys.Root.StopFuture(pid).Wait() }()
	c := <-o.client
	time.Sleep(1500 * time.Millisecond)
	h := c.Health()
	if h.State != actors.StateConnecting && h.State != actors.StateReconnecting {
		t.Fatalf("state %v", h.State)
	}
	if h.Attempt < 3 {
		t.Errorf("Attempt %d after 1.5 s of 20-200ms backoff", h.Attempt)
	}
	if h.LastError == nil {
		t.Error("LastError nil while the venue refuses")
	}
	sawNext := false
	for i := 0; i < 100 && !sawNext; i++ {
		sawNext = !c.Health().NextRetry.IsZero()
		time.Sleep(5 * time.Millisecond)
	}
	if !sawNext {
		t.Error("NextRetry never set while waiting the backoff")
	}
	if restarts.Load() != 0 || c.Health().Restarts != 0 {
		t.Errorf("RetryForever spent budget: events %d, Restarts %d", restarts.Load(), c.Health().Restarts)
	}
	before := v.upgrades.Load()
	_ = before
	v.down.Store(false)
	wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatalf("WaitConnected after the venue came up: %v", err)
	}
	h = c.Health()
	if h.Attempt != 0 || !h.NextRetry.IsZero() || h.ConnectedSince.IsZero() {
		t.Errorf("connected: Attempt %d NextRetry %v ConnectedSince %v", h.Attempt, h.NextRetry, h.ConnectedSince)
	}
	if h.LastError == nil {
		t.Error("LastError should stay set after the client reconnects")
	}
}

// Pattern 3 with a finite RetryCount under NewStrategy: a client that never
// connected is restarted within its budget and connects once the venue is up.
func TestFiniteRetryUnderOwnParentStartsDuringMaintenance(t *testing.T) {
	v := newVenue(t, false)
	v.down.Store(true)
	sys := testutil.NewSystem(t)
	cfg, err := actors.NewConfig(v.url, baseOpts(actors.WithRetryCount(1))...)
	if err != nil {
		t.Fatal(err)
	}
	o := &owner{cfg: cfg, client: make(chan *actors.Client, 1)}
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return o },
		actor.WithSupervisor(supervision.NewStrategy(supervision.WithRestartBudget(50, time.Minute)))))
	defer func() { _ = sys.Root.StopFuture(pid).Wait() }()
	c := <-o.client
	eventually(t, 5*time.Second, "restarted at least twice", func() bool { return c.Health().Restarts >= 2 })
	v.down.Store(false)
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
}

// Connect with RetryForever is bounded by its ctx, and leaves nothing behind.
func TestConnectRetryForeverBoundedByCtx(t *testing.T) {
	v := newVenue(t, false)
	v.down.Store(true)
	sys := testutil.NewSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := actors.Connect(ctx, sys, v.url, baseOpts()...)
	if err == nil {
		t.Fatal("connected to a down venue")
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Errorf("Connect took %v past a 400ms ctx", time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want the ctx's error wrapped: %v", err)
	}
	t.Logf("Connect error: %v", err)
	n := v.upgrades.Load()
	time.Sleep(500 * time.Millisecond)
	if v.upgrades.Load() != n {
		t.Error("something still dialling after Connect failed")
	}
}
