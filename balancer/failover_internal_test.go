package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
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

	// Lost, then not connected: max attempts, both kept.
	_, err = b.run(ctx, []CallOption{CallMaxAttempts(2)}, true, scripted(lost, notSent))
	if !errors.Is(err, ErrMaxAttempts) || !errors.Is(err, lost) || !errors.Is(err, notSent) {
		t.Fatalf("lost then not connected: %v; want ErrMaxAttempts wrapping both", err)
	}
	if !strings.Contains(err.Error(), "an earlier attempt") {
		t.Errorf("the text does not say an earlier attempt was lost: %q", err)
	}
	// Lost, then not connected on every other client: "every client was
	// tried", still with the loss.
	_, err = b.run(ctx, []CallOption{CallMaxAttempts(10)}, true, scripted(lost, notSent))
	if errors.Is(err, ErrMaxAttempts) || !errors.Is(err, lost) || !errors.Is(err, notSent) {
		t.Fatalf("every client tried: %v; want ErrDisconnected and ErrNotConnected, not ErrMaxAttempts", err)
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
