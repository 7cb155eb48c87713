package review13

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// Subscribe and Unsubscribe while a Rotate is under way: the connection the
// client switches to carries the wanted set.
func TestIntentDuringRotate(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, "old.1", "keep.1"); err != nil {
		t.Fatal(err)
	}
	v.delay.Store(int64(150 * time.Millisecond)) // slow restore on the new connection
	var wg sync.WaitGroup
	var rotErr error
	wg.Add(1)
	go func() { defer wg.Done(); rotErr = c.Rotate(ctx) }()
	time.Sleep(60 * time.Millisecond) // the replacement is being set up
	var subErr, unsErr error
	wg.Add(2)
	go func() { defer wg.Done(); subErr = c.Subscribe(ctx, "new.1") }()
	go func() { defer wg.Done(); unsErr = c.Unsubscribe(ctx, "old.1") }()
	wg.Wait()
	if rotErr != nil {
		t.Fatalf("Rotate: %v", rotErr)
	}
	if subErr != nil || unsErr != nil {
		t.Errorf("during rotate: Subscribe %v, Unsubscribe %v", subErr, unsErr)
	}
	v.delay.Store(0)
	if c.Health().Rotations != 1 {
		t.Errorf("rotations %d", c.Health().Rotations)
	}
	eventually(t, 3*time.Second, "one live connection", func() bool { return len(v.liveConns()) == 1 })
	eventually(t, 3*time.Second, "rotated connection carries the wanted set", func() bool {
		s := v.newestSubs()
		return len(s) == 2 && s["keep.1"] && s["new.1"]
	})
	if fmt.Sprint(c.Subscriptions()) != "[keep.1 new.1]" {
		t.Errorf("set %v", c.Subscriptions())
	}
	for _, s := range c.Health().Channels {
		if s.State != actors.ChannelActive {
			t.Errorf("%s %v after rotation", s.Channel, s.State)
		}
	}
}

// With RestoreSubscriptions off a new connection starts with nothing and the
// channels of earlier connections leave the wanted set.
func TestRestoreOff(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v, actors.WithRestoreSubscriptions(false))
	ctx := testutil.Context(t, 5*time.Second)
	if err := c.Subscribe(ctx, "a.1", "b.1"); err != nil {
		t.Fatal(err)
	}
	v.dropAll()
	eventually(t, 3*time.Second, "reconnected", func() bool { return c.Health().Generation >= 2 && c.State() == actors.StateConnected })
	time.Sleep(100 * time.Millisecond)
	if s := v.newestSubs(); len(s) != 0 {
		t.Errorf("restore off but the new connection got %v", s)
	}
	if n := len(c.Subscriptions()); n != 0 {
		t.Errorf("restore off: wanted set still %v", c.Subscriptions())
	}
	if c.Health().Degraded {
		t.Errorf("restore off: degraded with channels %+v", c.Health().Channels)
	}
}

// The balancer picks a degraded client only when no healthy one is left.
func TestBalancerPrefersHealthy(t *testing.T) {
	for _, st := range []balancer.Strategy{balancer.PeakEWMA, balancer.HealthScore} {
		t.Run(st.String(), func(t *testing.T) { balancerPrefersHealthy(t, st) })
	}
}

func balancerPrefersHealthy(t *testing.T, strategy balancer.Strategy) {
	vDeg := newVenue(t, false)
	vOK := newVenue(t, false)
	vDeg.setRefuse(func(ch string) bool { return ch == "refused.1" })
	sys := testutil.NewSystem(t)
	ctx := testutil.Context(t, 15*time.Second)
	deg, err := actors.Connect(ctx, sys, vDeg.url, baseOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer deg.Close()
	ok, err := actors.Connect(ctx, sys, vOK.url, baseOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	okClosed := false
	defer func() {
		if !okClosed {
			_ = ok.Close()
		}
	}()
	_ = deg.Subscribe(ctx, "md.1", "refused.1")
	if err := ok.Subscribe(ctx, "md.1"); err != nil {
		t.Fatal(err)
	}
	if !deg.Health().Degraded || ok.Health().Degraded {
		t.Fatalf("setup: deg %v ok %v", deg.Health().Degraded, ok.Health().Degraded)
	}
	var mu sync.Mutex
	pids := []*actor.PID{deg.PID(), ok.PID()}
	b, err := balancer.New(sys, balancer.WithStrategy(strategy), balancer.WithDiscovery(func() []*actor.PID {
		mu.Lock()
		defer mu.Unlock()
		return append([]*actor.PID(nil), pids...)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "degraded marked in the table", func() bool {
		for _, h := range b.PoolHealth() {
			if h.PID.Equal(deg.PID()) && strings.Contains(h.NotPicked, "degraded") {
				return true
			}
		}
		return false
	})
	count := func(v *venue, tag string) int {
		n := 0
		for _, f := range v.allFrames() {
			if strings.Contains(string(f.data), tag) {
				n++
			}
		}
		return n
	}
	for i := 0; i < 100; i++ {
		if err := b.Send(ctx, []byte(`{"tag":"round1"}`)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := count(vDeg, "round1"); n != 0 {
		t.Errorf("degraded client picked %d of 100 times while a healthy one was left", n)
	}
	// No healthy one left: the degraded one carries traffic.
	_ = ok.Close()
	okClosed = true
	mu.Lock()
	pids = []*actor.PID{deg.PID()}
	mu.Unlock()
	_ = b.Refresh(ctx)
	for i := 0; i < 10; i++ {
		if err := b.Send(ctx, []byte(`{"tag":"round2"}`)); err != nil {
			t.Fatalf("only a degraded client left: Send %v", err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := count(vDeg, "round2"); n != 10 {
		t.Errorf("degraded client got %d of 10", n)
	}
	// Recovery: the venue accepts now; the retry makes it healthy again.
	vDeg.setRefuse(nil)
	eventually(t, 5*time.Second, "no longer degraded in the table", func() bool {
		for _, h := range b.PoolHealth() {
			if h.PID.Equal(deg.PID()) {
				return !h.Health.Degraded && h.NotPicked == ""
			}
		}
		return false
	})
	_ = context.Background
}
