package reviewfailover

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// Finding 1. A retry-safe call: the first attempt's frame reached a venue
// that reset TCP (ErrDisconnected); the failover waits for a token of the
// rate limiter the clients share (RateWait, the default), and the caller
// cancels meanwhile. The error is only the second attempt's "cancelled":
// it no longer says that the first attempt may have reached a venue.
func TestFinding1CancelDuringLaterAttemptHidesLoss(t *testing.T) {
	lim := ratelimit.Simple(0.5, 1) // one token, the next in 2 s
	first := make(chan struct{})
	var once sync.Once
	v := &venue{behave: func(f frame) {
		once.Do(func() { close(first) })
		f.conn.reset()
	}}
	p := newPool(t, 2, v, []actors.Option{actors.WithRateLimiter(lim, actors.RateWait)})
	ctx, cancel := context.WithCancel(testutil.Context(t, 10*time.Second))
	defer cancel()
	go func() {
		<-first
		time.Sleep(300 * time.Millisecond) // the first attempt is lost; the second waits for its token
		cancel()
	}()
	_, err := p.b.Call(ctx, "public/get_time", nil)
	noSecret(t, err)
	if n := v.count(""); n != 1 {
		t.Fatalf("%d frames reached the servers, want 1 (the test's premise)", n)
	}
	if !mayHaveReached(err) {
		t.Errorf("first attempt lost after reaching the venue, then cancelled: %v; errors.Is finds neither ErrDisconnected nor ErrTimeout", err)
	}
}

// Finding 1, Call: the caller's ctx ends at the instant the second attempt
// is refused by the shared limiter (RateReject; a classifier is the hook
// that lands the cancel there). The client turns the refusal into
// "cancelled after 0s waiting for the response" (nothing was sent), which
// run returns as it is: the first attempt's ErrDisconnected is dropped.
func TestFinding1CancelAsLaterAttemptRefusedHidesLoss(t *testing.T) {
	ctx, cancel := context.WithCancel(testutil.Context(t, 10*time.Second))
	defer cancel()
	lim, _ := cancelAtSecondFrame(t, cancel)
	v := &venue{behave: resetOnFrame}
	p := newPool(t, 2, v, []actors.Option{actors.WithRateLimiter(lim, actors.RateReject)})
	_, err := p.b.Call(ctx, "public/get_time", nil)
	noSecret(t, err)
	if n := v.count(""); n != 1 {
		t.Fatalf("%d frames reached the servers, want 1 (the test's premise)", n)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("not the caller's cancellation: %v", err)
	}
	if !mayHaveReached(err) {
		t.Errorf("first attempt lost after reaching the venue, ctx ended before the next: %v; errors.Is finds neither ErrDisconnected nor ErrTimeout", err)
	}
}

// Finding 2. The balancer is stopped while a retry-safe call's first
// attempt is on the wire; the venue then resets TCP. The call returns
// ErrStopped alone ("the balancer was stopped"), not that the attempt may
// have reached the venue.
func TestFinding2StopMidCallHidesLoss(t *testing.T) {
	got := make(chan struct{}, 4)
	release := make(chan struct{})
	v := &venue{behave: func(f frame) {
		got <- struct{}{}
		<-release
		f.conn.reset()
	}}
	p := newPool(t, 2, v, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := p.b.Call(testutil.Context(t, 10*time.Second), "public/get_time", nil)
		errc <- err
	}()
	<-got
	if err := p.b.Stop(); err != nil {
		t.Fatal(err)
	}
	close(release)
	err := <-errc
	noSecret(t, err)
	if n := v.count(""); n != 1 {
		t.Fatalf("%d frames reached the servers, want 1 (the test's premise)", n)
	}
	if !mayHaveReached(err) {
		t.Errorf("attempt lost after reaching the venue, balancer stopped meanwhile: %v (ErrStopped %v); errors.Is finds neither ErrDisconnected nor ErrTimeout", err, errors.Is(err, balancer.ErrStopped))
	}
}

// Finding 3. A ctx cancelled with a cause (context.WithCancelCause) between
// attempts: the error is the cause "(after: ...)", and errors.Is(err,
// context.Canceled) is false, unlike the client's own errors (ctxErr wraps
// both) and unlike a ctx cancelled before the first attempt.
func TestFinding3CancelCauseBetweenAttemptsLosesCanceled(t *testing.T) {
	errShutdown := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(testutil.Context(t, 10*time.Second))
	defer cancel(nil)
	var armed atomic.Bool
	lim, err := ratelimit.New("account", func(f ratelimit.Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		if armed.Load() {
			cancel(errShutdown) // the caller gives up as the first attempt is refused
		}
		return 0, 1
	}, ratelimit.Bucket{Name: "orders", Rate: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := lim.Try(ratelimit.Frame{Data: []byte(`{}`)}); err != nil { // the one token
		t.Fatal(err)
	}
	armed.Store(true)
	v := &venue{}
	p := newPool(t, 2, v, []actors.Option{actors.WithRateLimiter(lim, actors.RateReject)})
	err = p.b.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/hello"}`))
	if !errors.Is(err, errShutdown) || !errors.Is(err, actors.ErrRateLimited) {
		t.Fatalf("want the cause after ErrRateLimited: %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ctx cancelled between attempts, with a cause: %v; errors.Is(err, context.Canceled) is false", err)
	}
}

// Finding 1, the between-attempts path (run's "ctx's cause (after: last)"):
// a retry-safe Send of 32 MiB to venues that stopped reading: the write
// times out with part of the message gone (ErrDisconnected). The failover
// is refused by the shared limiter (RateReject) at the instant the caller
// cancels: run returns "context canceled (after: rate limited)", without
// the first attempt's ErrDisconnected.
func TestFinding1CancelBetweenAttemptsHidesLoss(t *testing.T) {
	ctx, cancel := context.WithCancel(testutil.Context(t, 20*time.Second))
	defer cancel()
	lim, data := cancelAtSecondFrame(t, cancel)
	v := &venue{stall: make(chan struct{})}
	defer close(v.stall)
	p := newPool(t, 2, v, []actors.Option{
		actors.WithRateLimiter(lim, actors.RateReject),
		actors.Option(func(c *actors.Config) { c.WriteTimeout = 300 * time.Millisecond }),
	})
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = 'x'
	}
	err := p.b.Send(ctx, big, balancer.RetrySafe())
	noSecret(t, err)
	if n := data.Load(); n != 2 {
		t.Fatalf("%d attempts reached the limiter, want 2 (the test's premise); err %v", n, err)
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rate limited") {
		t.Errorf("not the between-attempts error: %v", err)
	}
	if !mayHaveReached(err) {
		t.Errorf("first attempt's write timed out with bytes gone, ctx ended before the next: %v; errors.Is finds neither ErrDisconnected nor ErrTimeout", err)
	}
}

// Finding 4. An order held by a ContextClassifier that waits (documented:
// "a ContextClassifier that waits makes them wait too") until the caller's
// deadline: nothing was sent, yet the error wraps ErrTimeout ("no response
// after ..."), so the user must reconcile an order that never left.
func TestFinding4NothingSentButErrTimeout(t *testing.T) {
	lim, err := ratelimit.NewContext("quota", func(ctx context.Context, f ratelimit.Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		<-ctx.Done() // an external quota service that never grants
		return 0, 1
	}, ratelimit.Bucket{Name: "orders", Rate: 100, Burst: 10})
	if err != nil {
		t.Fatal(err)
	}
	v := &venue{}
	p := newPool(t, 1, v, []actors.Option{actors.WithRateLimiter(lim, actors.RateWait)})
	ctx, cancel := context.WithTimeout(testutil.Context(t, 10*time.Second), 300*time.Millisecond)
	defer cancel()
	_, err = p.b.Call(ctx, "private/buy", map[string]any{"label": "q1"})
	if n := v.count(""); n != 0 {
		t.Fatalf("%d frames reached the server, want 0 (the test's premise)", n)
	}
	if err == nil || mayHaveReached(err) {
		t.Errorf("order never left the process: %v; errors.Is says it may have reached a venue", err)
	}
}

// cancelAtSecondFrame is a limiter of one token (the next in 1,000 s) that
// calls cancel as the second data frame asks for its token: the caller
// gives up at the instant the second attempt is refused. data counts the
// data frames it saw.
func cancelAtSecondFrame(t *testing.T, cancel func()) (*ratelimit.Limiter, *atomic.Int32) {
	t.Helper()
	data := new(atomic.Int32)
	lim, err := ratelimit.New("account", func(f ratelimit.Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		if data.Add(1) == 2 {
			cancel()
		}
		return 0, 1
	}, ratelimit.Bucket{Name: "orders", Rate: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	return lim, data
}
