package review13

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Subscribe/Unsubscribe while the restore of a new connection is running;
// channels are stale meanwhile.
func TestIntentDuringRestore(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, "r.1", "r.2"); err != nil {
		t.Fatal(err)
	}
	v.delay.Store(int64(400 * time.Millisecond))
	v.dropAll()
	sawStale := false
	eventually(t, 2*time.Second, "restore under way", func() bool {
		for _, s := range c.Health().Channels {
			if s.State == actors.ChannelStale {
				sawStale = true
			}
		}
		return len(v.liveConns()) == 1 && len(v.requestsFor("r.1")) >= 2
	})
	for i := 0; i < 20 && !sawStale; i++ {
		for _, s := range c.Health().Channels {
			if s.State == actors.ChannelStale {
				sawStale = true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawStale {
		t.Errorf("no channel was ever ChannelStale during the restore: %+v", c.Health().Channels)
	}
	var wg sync.WaitGroup
	var e1, e2 error
	wg.Add(2)
	go func() { defer wg.Done(); e1 = c.Subscribe(ctx, "r.3") }()
	go func() { defer wg.Done(); e2 = c.Unsubscribe(ctx, "r.1") }()
	wg.Wait()
	t.Logf("during restore: Subscribe %v, Unsubscribe %v", e1, e2)
	if e1 != nil {
		t.Errorf("Subscribe during restore: %v", e1)
	}
	v.delay.Store(0)
	eventually(t, 3*time.Second, "venue has r.2 r.3 only", func() bool {
		s := v.newestSubs()
		return len(s) == 2 && s["r.2"] && s["r.3"]
	})
	if fmt.Sprint(c.Subscriptions()) != "[r.2 r.3]" {
		t.Errorf("set %v", c.Subscriptions())
	}
}

// The same channel subscribed and unsubscribed at once, many times: the
// client's set and the venue agree afterwards.
func TestSameChannelSubUnsubRace(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 20*time.Second)
	for round := 0; round < 30; round++ {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = c.Subscribe(ctx, "flip.1") }()
		go func() { defer wg.Done(); _ = c.Unsubscribe(ctx, "flip.1") }()
		wg.Wait()
		wanted := len(c.Subscriptions()) == 1
		var venueHas bool
		ok := false
		for i := 0; i < 100; i++ {
			venueHas = v.newestSubs()["flip.1"]
			if venueHas == wanted {
				ok = true
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !ok {
			t.Fatalf("round %d: client wants=%v, venue has=%v (channels %+v)", round, wanted, venueHas, c.Health().Channels)
		}
	}
}

// A refused unsubscribe: Wanted false, failed, retried; gone once accepted.
func TestRefusedUnsubscribe(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, "u.1", "u.2"); err != nil {
		t.Fatal(err)
	}
	v.refuseUnsb.Store(true)
	err := c.Unsubscribe(ctx, "u.1")
	if err == nil {
		t.Error("refused unsubscribe returned nil")
	}
	st, ok := chanState(c, "u.1")
	if !ok || st.Wanted || st.State != actors.ChannelFailed || st.NextRetry.IsZero() {
		t.Errorf("refused unsubscribe status %+v (present %v)", st, ok)
	}
	if fmt.Sprint(c.Subscriptions()) != "[u.2]" {
		t.Errorf("set %v", c.Subscriptions())
	}
	time.Sleep(500 * time.Millisecond)
	v.refuseUnsb.Store(false)
	eventually(t, 3*time.Second, "unsubscribe retried and applied", func() bool {
		_, ok := chanState(c, "u.1")
		return !ok && !v.newestSubs()["u.1"]
	})
	// an unsubscribe confirmed for another channel removes nothing
	v.otherUnsub.Store(true)
	err = c.Unsubscribe(ctx, "u.2")
	t.Logf("unsubscribe confirmed for another channel: %v", err)
	if c.Health().ConfirmationsIgnored == 0 {
		t.Error("foreign unsubscribe confirmation not counted")
	}
	if _, ok := chanState(c, "u.2"); !ok {
		t.Error("u.2 vanished from Health.Channels though the venue never confirmed its removal")
	}
}

// Garbage and duplicate confirmations do not panic and count once.
func TestGarbageConfirmations(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	for _, g := range []string{`"ok"`, `{}`, `[123]`, `null`, `[null]`, `[["g.1"]]`, `true`} {
		v.garbage.Store(g)
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Subscribe(sctx, "g.1")
		cancel()
		if err == nil {
			t.Errorf("result %s: Subscribe succeeded", g)
		}
		if st, _ := chanState(c, "g.1"); st.State == actors.ChannelActive {
			t.Errorf("result %s: g.1 active", g)
		}
	}
	v.garbage.Store("")
	v.dupConfirm.Store(true)
	if err := c.Subscribe(ctx, "d.1", "d.2"); err != nil {
		t.Errorf("duplicate-laden confirmation: %v", err)
	}
	if len(c.Health().Channels) != 3 {
		t.Errorf("channels %+v", c.Health().Channels)
	}
	if c.State() != actors.StateConnected {
		t.Errorf("state %v", c.State())
	}
}

// Close while Subscribes wait for a venue that never answers: they return
// ErrClosed promptly.
func TestCloseWhileSubscribeWaits(t *testing.T) {
	v := newVenue(t, false)
	sys := testutil.NewSystem(t)
	ctx := testutil.Context(t, 10*time.Second)
	c, err := actors.Connect(ctx, sys, v.url, baseOpts(actors.WithRequestTimeout(30*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	v.noAnswer.Store(true)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func(i int) { errs <- c.Subscribe(ctx, fmt.Sprintf("w.%d", i)) }(i)
	}
	time.Sleep(200 * time.Millisecond)
	_ = c.Close()
	for i := 0; i < 8; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, actors.ErrClosed) {
				t.Errorf("Subscribe waiting at Close: want ErrClosed, got %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Subscribe still waiting 2 s after Close")
		}
	}
	if err := c.Subscribe(nilCtx, "x"); !errors.Is(err, actors.ErrNilContext) {
		t.Errorf("nil ctx: %v", err)
	}
}

// An ended ctx changes nothing; nil ctx is ErrNilContext.
func TestEndedCtxChangesNothing(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 5*time.Second)
	if err := c.Subscribe(ctx, "keep.1"); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Subscribe(done, "new.1"); !errors.Is(err, context.Canceled) || errors.Is(err, actors.ErrTimeout) {
		t.Errorf("ended ctx Subscribe: %v", err)
	}
	if err := c.Unsubscribe(done, "keep.1"); !errors.Is(err, context.Canceled) {
		t.Errorf("ended ctx Unsubscribe: %v", err)
	}
	if fmt.Sprint(c.Subscriptions()) != "[keep.1]" {
		t.Errorf("an ended ctx changed the set: %v", c.Subscriptions())
	}
	if err := c.Unsubscribe(nilCtx, "keep.1"); !errors.Is(err, actors.ErrNilContext) {
		t.Errorf("nil ctx: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(v.requestsFor("new.1")) != 0 {
		t.Error("an ended ctx sent a subscribe")
	}
}

// Degraded reaches health watchers (the push), both ways.
type watcher struct{ ch chan actors.Health }

func (w *watcher) Receive(ctx actor.Context) {
	if u, ok := ctx.Message().(*actors.HealthUpdate); ok {
		select {
		case w.ch <- u.Health:
		default:
		}
	}
}

func TestDegradedInHealthPush(t *testing.T) {
	v := newVenue(t, false)
	v.setRefuse(func(ch string) bool { return ch == "no.1" })
	sys := testutil.NewSystem(t)
	ctx := testutil.Context(t, 10*time.Second)
	c, err := actors.Connect(ctx, sys, v.url, baseOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := &watcher{ch: make(chan actors.Health, 1000)}
	wp := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return w }))
	defer func() { _ = sys.Root.StopFuture(wp).Wait() }()
	if err := c.WatchHealth(wp); err != nil {
		t.Fatal(err)
	}
	_ = c.Subscribe(ctx, "yes.1", "no.1")
	wait := func(want bool) {
		t.Helper()
		deadline := time.After(3 * time.Second)
		for {
			select {
			case h := <-w.ch:
				if h.Degraded == want && h.State == actors.StateConnected {
					return
				}
			case <-deadline:
				t.Fatalf("no push with Degraded=%v", want)
			}
		}
	}
	wait(true)
	v.setRefuse(nil)
	wait(false)
}

// Rotation when the new connection refuses a channel active on the old one:
// the rotation fails and the old connection stays.
func TestRotateRefusedOnNew(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, "rot.a", "rot.b"); err != nil {
		t.Fatal(err)
	}
	v.setRefuse(func(ch string) bool { return ch == "rot.b" })
	gen := c.Health().Generation
	err := c.Rotate(ctx)
	if !errors.Is(err, actors.ErrRotationFailed) {
		t.Errorf("Rotate with a channel refused on the new connection: want ErrRotationFailed, got %v", err)
	}
	if g := c.Health().Generation; g != gen {
		t.Errorf("generation %d -> %d: switched anyway", gen, g)
	}
	if st, _ := chanState(c, "rot.b"); st.State != actors.ChannelActive {
		t.Errorf("rot.b on the old connection: %v", st.State)
	}
	v.setRefuse(nil)
}

// nilCtx is a nil context.Context, passed on purpose: the API's answer to
// it is ErrNilContext.
var nilCtx context.Context
