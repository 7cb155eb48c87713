package ctxerr

import (
	"context"
	"errors"
	"testing"
)

func TestOf(t *testing.T) {
	if err := Of(context.Background()); err != nil {
		t.Fatalf("a live ctx: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Of(ctx); err != context.Canceled {
		t.Fatalf("cancelled without a cause: %v, want context.Canceled itself", err)
	}
	cause := errors.New("shutting down")
	cctx, ccancel := context.WithCancelCause(context.Background())
	ccancel(cause)
	if err := Of(cctx); !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Fatalf("cancelled with a cause: %v, want both", err)
	}
}
