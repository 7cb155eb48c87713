package reviewfailover

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/testutil"
)

// shutdownCause is a caller's cancel cause of its own type: what
// errors.As, not only errors.Is, is for.
type shutdownCause struct{ reason string }

func (e *shutdownCause) Error() string { return "shutting down: " + e.reason }

// review2 finding 1. A retry-safe Call: the first attempt reaches a venue
// that resets TCP (lost); the second attempt is written and the caller
// cancels with a cause of its own type while it waits for the response.
// The docs: the error "still matches the caller's context.Canceled and its
// cause". errors.Is finds the cause; errors.As does not: lostError's
// Unwrap is the earlier loss only, so the last error (and the cause in it)
// is out of errors.As's reach.
func TestReview2AsFindsCancelCauseAfterLoss(t *testing.T) {
	cause := &shutdownCause{reason: "deploy"}
	ctx, cancel := context.WithCancelCause(testutil.Context(t, 10*time.Second))
	defer cancel(nil)
	var n atomic.Int32
	v := &venue{behave: func(f frame) {
		if n.Add(1) == 1 {
			f.conn.reset()
			return
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel(cause) // the second attempt waits for its response
		}()
	}}
	p := newPool(t, 2, v, nil)
	_, err := p.b.Call(ctx, "public/get_time", nil)
	noSecret(t, err)
	if c := v.count(""); c != 2 {
		t.Fatalf("%d frames reached the servers, want 2 (the test's premise): %v", c, err)
	}
	if !mayHaveReached(err) {
		t.Fatalf("premise: the loss is kept: %v", err)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Fatalf("premise: matches the cancellation and its cause: %v", err)
	}
	var got *shutdownCause
	if !errors.As(err, &got) {
		t.Errorf("errors.Is finds the caller's cause, errors.As(err, *shutdownCause) does not: %v (%s)", err, fmt.Sprintf("%T", err))
	}
}
