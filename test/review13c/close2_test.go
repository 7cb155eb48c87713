package review13c

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
)

// closer records Close's result and whether user code ran after it returned.
type closer struct {
	c        atomic.Pointer[actors.Client]
	returned atomic.Bool
	after    atomic.Int64 // user calls that started after Close returned
	res      chan error
	once     atomic.Bool
	stopped  bool // Close after the client stopped by itself: ErrClosed is fine
}

func newCloser() *closer { return &closer{res: make(chan error, 1)} }

// close closes once, from whatever goroutine calls it.
func (k *closer) close(c *actors.Client) {
	if !k.once.CompareAndSwap(false, true) {
		return
	}
	err := c.Close()
	k.returned.Store(true)
	k.res <- err
}

// user marks a call of user code.
func (k *closer) user() {
	if k.returned.Load() {
		k.after.Add(1)
	}
}

func (k *closer) check(t *testing.T, what string) {
	t.Helper()
	select {
	case err := <-k.res:
		if err != nil && !(k.stopped && errors.Is(err, actors.ErrClosed)) {
			t.Errorf("Close from %s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Close from %s never returned", what)
	}
	time.Sleep(300 * time.Millisecond) // anything queued would run meanwhile
	if n := k.after.Load(); n > 0 {
		t.Errorf("Close from %s: %d calls of user code started after it returned", what, n)
	}
	if c := k.c.Load(); c != nil {
		if err := c.WaitConnected(ctxT(t, 5*time.Second)); !errors.Is(err, actors.ErrClosed) {
			t.Errorf("WaitConnected after Close from %s: %v, want ErrClosed", what, err)
		}
	}
}

// A connect hook after the one that called Close runs after Close returned
// (runHooks does not stop when the client closed): user code after Close.
func TestHookAfterCloseFromEarlierHook(t *testing.T) {
	pe := newRawPeer(t, nil)
	k := newCloser()
	var arm atomic.Bool
	h1 := func(ctx context.Context, s *actors.Setup) error {
		k.user()
		if arm.Load() {
			k.close(s.Client())
		}
		return nil
	}
	h2 := func(ctx context.Context, s *actors.Setup) error { k.user(); return nil }
	c := dial(t, pe.URL, nil, actors.WithConnectHook(h1), actors.WithConnectHook(h2))
	arm.Store(true)
	pe.dropAll()
	k.check(t, "the first of two connect hooks")
	_ = c
}

// closeVenue is Deribit with a Connector that closes the client (a venue's
// login that decides the client must stop).
type closeVenue struct {
	deribit.Venue
	k   *closer
	arm *atomic.Bool
}

func (v closeVenue) OnConnect(ctx context.Context, s venue.Session) error {
	v.k.user()
	if v.arm.Load() {
		if st, ok := s.(*actors.Setup); ok {
			v.k.close(st.Client())
		}
	}
	return nil
}

// The same from a venue's OnConnect: the user's own hooks run after Close.
func TestUserHookAfterCloseFromVenueOnConnect(t *testing.T) {
	pe := newRawPeer(t, nil)
	k := newCloser()
	var arm atomic.Bool
	h := func(ctx context.Context, s *actors.Setup) error { k.user(); return nil }
	c := dial(t, pe.URL, nil, actors.WithVenue(closeVenue{k: k, arm: &arm}), actors.WithConnectHook(h))
	arm.Store(true)
	pe.dropAll()
	k.check(t, "a venue's OnConnect")
	_ = c
}

// Close from the observer on each kind of change, from OnConnect and from
// OnDisconnect: returns nil, nothing after, WaitConnected says ErrClosed.
// (Guard.)
func TestCloseFromEveryCallback(t *testing.T) {
	for _, to := range []actors.State{actors.StateConnected, actors.StateReconnecting} {
		t.Run("observer to "+to.String(), func(t *testing.T) {
			pe := newRawPeer(t, nil)
			k := newCloser()
			var arm atomic.Bool
			obs := func(s actors.StateChange) {
				k.user()
				if arm.Load() && s.To == to {
					k.close(k.c.Load())
				}
			}
			c := dial(t, pe.URL, nil, actors.WithStateObserver(obs), actors.WithHandler(func(actors.Inbound) { k.user() }),
				actors.WithOnDisconnect(func(*actor.PID) { k.user() }), actors.WithOnConnect(func(*actor.PID) { k.user() }))
			k.c.Store(c)
			arm.Store(true)
			pe.dropAll()
			k.check(t, "the observer")
		})
	}
	for _, which := range []string{"OnConnect", "OnDisconnect"} {
		t.Run(which, func(t *testing.T) {
			pe := newRawPeer(t, nil)
			k := newCloser()
			var arm atomic.Bool
			cb := func(name string) func(*actor.PID) {
				return func(*actor.PID) {
					k.user()
					if arm.Load() && name == which {
						k.close(k.c.Load())
					}
				}
			}
			opts := []actors.Option{actors.WithStateObserver(func(actors.StateChange) { k.user() }),
				actors.WithOnDisconnect(cb("OnDisconnect")), actors.WithOnConnect(cb("OnConnect"))}
			if which == "OnDisconnect" { // runs when the client gives up
				k.stopped = true
				opts = append(opts, actors.WithRetryCount(2))
			}
			c := dial(t, pe.URL, nil, opts...)
			k.c.Store(c)
			arm.Store(true)
			if which == "OnDisconnect" {
				pe.refuse.Store(true)
			}
			pe.dropAll()
			k.check(t, which)
		})
	}
}

// Close from the connect hook of a rotation's new connection: returns nil,
// Rotate returns an error, nothing of the user's runs after. (Guard.)
func TestCloseFromRotationHook(t *testing.T) {
	pe := newRawPeer(t, nil)
	k := newCloser()
	var arm atomic.Bool
	h := func(ctx context.Context, s *actors.Setup) error {
		k.user()
		if arm.Load() {
			k.close(s.Client())
		}
		return nil
	}
	c := dial(t, pe.URL, nil, actors.WithConnectHook(h), actors.WithStateObserver(func(actors.StateChange) { k.user() }),
		actors.WithHandler(func(actors.Inbound) { k.user() }), actors.WithOnDisconnect(func(*actor.PID) { k.user() }))
	k.c.Store(c)
	arm.Store(true)
	rerr := c.Rotate(ctxT(t, 10*time.Second))
	k.check(t, "a rotation's connect hook")
	if rerr == nil {
		t.Errorf("Rotate returned nil although its new connection's hook closed the client")
	}
}

// Close from the observer and from a hook at once (a second Close):
// neither waits for itself. (Guard.)
func TestCloseTwiceFromObserverAndHook(t *testing.T) {
	pe := newRawPeer(t, nil)
	var arm atomic.Bool
	var c atomic.Pointer[actors.Client]
	res := make(chan error, 2)
	inHook := make(chan struct{})
	h := func(ctx context.Context, s *actors.Setup) error {
		if arm.Load() {
			close(inHook)
			res <- s.Client().Close()
		}
		return nil
	}
	obs := func(s actors.StateChange) {
		if arm.Load() && s.To == actors.StateReconnecting {
			<-inHook
			res <- c.Load().Close()
		}
	}
	cl := dial(t, pe.URL, nil, actors.WithConnectHook(h), actors.WithStateObserver(obs))
	c.Store(cl)
	arm.Store(true)
	pe.dropAll()
	for i := 0; i < 2; i++ {
		select {
		case err := <-res:
			if err != nil && !errors.Is(err, actors.ErrClosed) {
				t.Errorf("Close %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Close %d never returned", i)
		}
	}
}

// Close from the observer on the first change (to connecting, while Connect
// waits) and on the last (to disconnected, after a give-up): Close returns
// without waiting for itself, Connect returns. (Guard.)
func TestCloseFromObserverFirstAndLast(t *testing.T) {
	t.Run("connecting", func(t *testing.T) {
		pe := newRawPeer(t, nil)
		k := newCloser()
		var cl atomic.Pointer[actors.Client]
		ready := make(chan struct{})
		obs := func(s actors.StateChange) {
			k.user()
			if s.To == actors.StateConnecting {
				<-ready
				k.close(cl.Load())
			}
		}
		cfg, err := actors.NewConfig(pe.URL, actors.WithStateObserver(obs), actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }))
		if err != nil {
			t.Fatal(err)
		}
		c, err := actors.Spawn(newSys(t).Root, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cl.Store(c)
		k.c.Store(c)
		close(ready)
		k.check(t, "the observer (to connecting)")
	})
	t.Run("disconnected", func(t *testing.T) {
		pe := newRawPeer(t, nil)
		k := newCloser()
		k.stopped = true
		var cl atomic.Pointer[actors.Client]
		obs := func(s actors.StateChange) {
			k.user()
			if s.To == actors.StateDisconnected {
				k.close(cl.Load())
			}
		}
		c := dial(t, pe.URL, nil, actors.WithStateObserver(obs), actors.WithRetryCount(1), actors.WithOnDisconnect(func(*actor.PID) { k.user() }))
		cl.Store(c)
		k.c.Store(c)
		pe.refuse.Store(true)
		pe.dropAll()
		k.check(t, "the observer (to disconnected)")
	})
}

// recDialect is Deribit's, marking each Requests call as user code.
type recDialect struct {
	deribit.Dialect
	k *closer
}

func (d recDialect) Requests(op venue.SubscriptionOp, ch []string) []venue.SubscriptionRequest {
	d.k.user()
	return d.Dialect.Requests(op, ch)
}

type recVenue struct{ k *closer }

func (recVenue) Name() string             { return "rec" }
func (v recVenue) Dialect() venue.Dialect { return recDialect{k: v.k} }

// Close from a connect hook with channels wanted: the restore that follows
// the hook must not call the venue's Dialect after Close returned.
func TestRestoreAfterCloseFromHook(t *testing.T) {
	pe := newRawPeer(t, nil)
	k := newCloser()
	var arm atomic.Bool
	h := func(ctx context.Context, s *actors.Setup) error {
		if arm.Load() {
			k.close(s.Client())
		}
		return nil
	}
	c := dial(t, pe.URL, nil, actors.WithVenue(recVenue{k: k}), actors.WithConnectHook(h))
	if err := c.Subscribe(ctxT(t, 5*time.Second), "book.a", "book.b"); err != nil {
		t.Fatal(err)
	}
	arm.Store(true)
	pe.dropAll()
	k.check(t, "a connect hook (channels wanted)")
}

// Close right after Spawn (the actor may not have started), with the venue
// refusing: Close returns nil, WaitConnected says ErrClosed, not the dial
// error. (Guard.)
func TestCloseRightAfterSpawn(t *testing.T) {
	pe := newRawPeer(t, nil)
	pe.refuse.Store(true)
	for i := 0; i < 5; i++ {
		cfg, err := actors.NewConfig(pe.URL, actors.WithRetryCount(actors.RetryForever), actors.WithRetryDelay(time.Millisecond),
			actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }))
		if err != nil {
			t.Fatal(err)
		}
		c, err := actors.Spawn(newSys(t).Root, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			time.Sleep(20 * time.Millisecond) // a few refused dials first
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := c.WaitConnected(ctxT(t, 5*time.Second)); !errors.Is(err, actors.ErrClosed) {
			t.Errorf("WaitConnected after Close: %v, want ErrClosed", err)
		}
	}
}
