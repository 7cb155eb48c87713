package review15b

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	dv "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/internal/testutil"
)

// dmVenue is Deribit's dialect with a dead man's switch whose arm the test
// scripts.
type dmVenue struct {
	dv.Venue
	after  time.Duration
	arm    func(ctx context.Context, s venue.Session, after time.Duration) error
	afters chan time.Duration
}

func (v *dmVenue) DeadManAfter() time.Duration { return v.after }
func (v *dmVenue) ArmDeadMan(ctx context.Context, s venue.Session, after time.Duration) error {
	select {
	case v.afters <- after:
	default:
	}
	if v.arm != nil {
		return v.arm(ctx, s, after)
	}
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"private/cancel_all_after","params":{"timeout":%d}}`, s.NextID(), after.Milliseconds())
	_, err := s.Request(ctx, []byte(msg))
	return err
}

func spawnPlain(t *testing.T, url string, opts ...actors.Option) *actors.Client {
	t.Helper()
	c, err := actors.NewConfig(url, append(baseOpts(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := actors.Spawn(testutil.NewSystem(t).Root, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// An arm that hangs until its ctx ends, and one that ignores its ctx
// entirely: the client never reports connected, and Close returns.
func TestDeadManArmHangs(t *testing.T) {
	openFinding(t, 5)
	p := newPeer(t)
	release := make(chan struct{})
	v := &dmVenue{after: 5 * time.Second, afters: make(chan time.Duration, 1), arm: func(ctx context.Context, s venue.Session, after time.Duration) error {
		select {
		case <-release: // ignores ctx
		case <-time.After(20 * time.Second):
		}
		return nil
	}}
	defer close(release)
	cl := spawnPlain(t, p.url(), actors.WithVenue(v))
	time.Sleep(500 * time.Millisecond)
	if cl.State() == actors.StateConnected {
		t.Fatal("connected while the dead man's switch is not armed")
	}
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- cl.Close() }()
	select {
	case <-done:
		t.Logf("Close took %v", time.Since(t0))
	case <-time.After(2 * time.Second):
		t.Fatal("Close hangs behind an ArmDeadMan that ignores its ctx (2 s and counting)")
	}
}

// The same with an arm that waits on its ctx: Close is prompt.
func TestDeadManArmHangsOnCtx(t *testing.T) {
	p := newPeer(t)
	v := &dmVenue{after: 5 * time.Second, afters: make(chan time.Duration, 1), arm: func(ctx context.Context, s venue.Session, after time.Duration) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	cl := spawnPlain(t, p.url(), actors.WithVenue(v))
	time.Sleep(300 * time.Millisecond)
	if cl.State() == actors.StateConnected {
		t.Fatal("connected while the dead man's switch is not armed")
	}
	done := make(chan error, 1)
	go func() { done <- cl.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}

// An arm that panics: counted as an error, never connected, no crash.
func TestDeadManArmPanics(t *testing.T) {
	p := newPeer(t)
	var n atomic.Int64
	v := &dmVenue{after: 5 * time.Second, afters: make(chan time.Duration, 1), arm: func(ctx context.Context, s venue.Session, after time.Duration) error {
		n.Add(1)
		panic("arm")
	}}
	cl := spawnPlain(t, p.url(), actors.WithVenue(v))
	testutil.Eventually(t, 3*time.Second, "retries", func() bool { return n.Load() >= 3 })
	if cl.State() == actors.StateConnected {
		t.Fatal("connected after a panicking arm")
	}
}

// DeadManAfter 1 ns is taken as 2 s: renewals every second at most, not a
// storm. 100 years: armed once, connected. Negative: no switch.
func TestDeadManAfterExtremes(t *testing.T) {
	t.Run("1ns", func(t *testing.T) {
		p := newPeer(t)
		v := &dmVenue{after: time.Nanosecond, afters: make(chan time.Duration, 1)}
		cl := spawnPlain(t, p.url(), actors.WithVenue(v))
		if err := cl.WaitConnected(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if a := <-v.afters; a < 2*time.Second {
			t.Errorf("ArmDeadMan given %v, want at least 2 s", a)
		}
		time.Sleep(2500 * time.Millisecond)
		if n := p.count("private/cancel_all_after"); n < 2 || n > 5 {
			t.Errorf("%d arms in 2.5 s with T = 1 ns (taken as 2 s: about 3)", n)
		}
	})
	t.Run("100y", func(t *testing.T) {
		p := newPeer(t)
		v := &dmVenue{after: 100 * 365 * 24 * time.Hour, afters: make(chan time.Duration, 1)}
		cl := spawnPlain(t, p.url(), actors.WithVenue(v))
		if err := cl.WaitConnected(ctx(t)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if n := p.count("private/cancel_all_after"); n != 1 {
			t.Errorf("%d arms with T = 100 years", n)
		}
	})
	t.Run("negative", func(t *testing.T) {
		p := newPeer(t)
		v := &dmVenue{after: -time.Second, afters: make(chan time.Duration, 1)}
		cl := spawnPlain(t, p.url(), actors.WithVenue(v))
		if err := cl.WaitConnected(ctx(t)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if n := p.count("private/cancel_all_after"); n != 0 {
			t.Errorf("%d arms with T < 0", n)
		}
	})
}

// The venue refuses renewals: the connection stays (a renewal failure is
// only logged), and after a drop the next connection is armed again before
// it is connected.
func TestDeadManRearmedOnEveryConnection(t *testing.T) {
	p := newPeer(t)
	var arms atomic.Int64
	p.onReq = func(c *pconn, r rq) bool {
		if r.Method == "private/cancel_all_after" {
			arms.Add(1)
			c.armed.Store(true)
		}
		return false
	}
	v := &dmVenue{after: 2 * time.Second, afters: make(chan time.Duration, 1)}
	cl := spawnPlain(t, p.url(), actors.WithVenue(v))
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		p.dropAll()
		testutil.Eventually(t, 3*time.Second, "reconnect", func() bool {
			c := p.last()
			return c != nil && c.n == int64(i+2) && cl.State() == actors.StateConnected
		})
		if !p.last().armed.Load() {
			t.Fatalf("connection %d connected without its switch", i+2)
		}
	}
}
