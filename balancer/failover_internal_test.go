package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

// A retry-safe operation whose first attempt was lost with the connection
// (it may have reached the venue) and whose next attempt found a client
// not connected (a reconnecting client the table still held eligible, as
// CI once saw against the Node peer): the final error must still say that
// something may have been sent. It used to wrap only the last attempt's
// ErrNotConnected. The attempts' outcomes are scripted in order, so the
// order that hid the loss is the one tried, every time.
func TestMaxAttemptsKeepsAnEarlierLoss(t *testing.T) {
	sys := testutil.NewSystem(t)
	var pids []*actor.PID
	for i := 0; i < 3; i++ {
		srv := wstest.NewServer()
		t.Cleanup(srv.Close)
		c, err := actors.Connect(testutil.Context(t, 10*time.Second), sys, srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		pids = append(pids, c.PID())
	}
	b, err := New(sys, WithDiscovery(func() []*actor.PID { return pids }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	testutil.Eventually(t, 5*time.Second, "3 eligible clients", func() bool {
		n := 0
		for _, ch := range b.PoolHealth() {
			if ch.Eligible {
				n++
			}
		}
		return n == 3
	})
	ctx := testutil.Context(t, 5*time.Second)
	scripted := func(errs ...error) func(context.Context, Endpoint) (json.RawMessage, error) {
		i := 0
		return func(context.Context, Endpoint) (json.RawMessage, error) {
			err := errs[min(i, len(errs)-1)]
			i++
			return nil, err
		}
	}
	lost := actors.ErrDisconnected
	notSent := actors.ErrNotConnected

	// Lost, then not connected: max attempts, the loss kept. The
	// operation's error no longer matches ErrNotConnected ("nothing was
	// sent": not true of the operation), though its text names it.
	_, err = b.run(ctx, []CallOption{CallMaxAttempts(2)}, true, scripted(lost, notSent))
	if !errors.Is(err, ErrMaxAttempts) || !errors.Is(err, lost) || errors.Is(err, notSent) || errors.Is(err, transport.ErrNotSent) {
		t.Fatalf("lost then not connected: %v; want ErrMaxAttempts wrapping the loss, not a not-sent error", err)
	}
	if !strings.Contains(err.Error(), "an earlier attempt") || !strings.Contains(err.Error(), notSent.Error()) {
		t.Errorf("the text does not say the last attempt found no connection after an earlier loss: %q", err)
	}
	// Lost, then not connected on every other client: "every client was
	// tried", still with the loss.
	_, err = b.run(ctx, []CallOption{CallMaxAttempts(10)}, true, scripted(lost, notSent))
	if errors.Is(err, ErrMaxAttempts) || !errors.Is(err, lost) || errors.Is(err, notSent) {
		t.Fatalf("every client tried: %v; want the loss, not ErrMaxAttempts nor ErrNotConnected", err)
	}
	// Lost, then the caller cancels (with a cause): the cancellation, its
	// cause and the loss.
	cause := errors.New("shutting down")
	cctx, cancel := context.WithCancelCause(ctx)
	_, err = b.run(cctx, []CallOption{CallMaxAttempts(3)}, true, func(context.Context, Endpoint) (json.RawMessage, error) {
		cancel(cause)
		return nil, lost
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) || !errors.Is(err, lost) {
		t.Fatalf("lost, then cancelled: %v; want context.Canceled, its cause and ErrDisconnected", err)
	}
	// Lost, then an attempt that ended with the caller's ctx before any
	// byte of it was written: still the loss.
	cctx, cancel2 := context.WithCancel(ctx)
	unsent := fmt.Errorf("zenws: cancelled waiting to send (%w): %w", transport.ErrNotSent, context.Canceled)
	calls := 0
	_, err = b.run(cctx, []CallOption{CallMaxAttempts(3)}, true, func(context.Context, Endpoint) (json.RawMessage, error) {
		calls++
		if calls == 1 {
			return nil, lost
		}
		cancel2()
		return nil, unsent
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, lost) || errors.Is(err, transport.ErrNotSent) {
		t.Fatalf("lost, then cancelled unsent: %v; want context.Canceled and the loss, not ErrNotSent", err)
	}
	// A request that timed out waiting to be written (ErrTimeout and
	// ErrNotSent) is no loss, and is tried elsewhere.
	unsentTimeout := fmt.Errorf("zenws: no turn to send (%w): %w: %w", transport.ErrNotSent, actors.ErrTimeout, context.DeadlineExceeded)
	_, err = b.run(ctx, []CallOption{CallMaxAttempts(2)}, false, scripted(unsentTimeout, notSent))
	if !errors.Is(err, ErrMaxAttempts) || errors.Is(err, lost) || errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("timed out unsent, then not connected, an order: %v; want ErrMaxAttempts, no loss", err)
	}
	// Nothing sent on any attempt: no loss is claimed.
	_, err = b.run(ctx, []CallOption{CallMaxAttempts(2)}, true, scripted(notSent))
	if !errors.Is(err, ErrMaxAttempts) || errors.Is(err, lost) || errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("nothing sent: %v; want ErrMaxAttempts wrapping ErrNotConnected only", err)
	}
	// The last attempt itself lost: that error, once.
	_, err = b.run(ctx, []CallOption{CallMaxAttempts(2)}, true, scripted(notSent, actors.ErrTimeout))
	if !errors.Is(err, actors.ErrTimeout) || errors.Is(err, notSent) {
		t.Fatalf("last attempt timed out: %v; want ErrTimeout as the last error", err)
	}
}
