// Package ctxerr says why a context ended, for the errors of every zenws
// package that waits on one.
package ctxerr

import (
	"context"
	"fmt"
)

// Of is ctx's error, wrapping its cause too when that is another error
// (context.WithCancelCause, WithDeadlineCause), so that errors.Is finds
// both context.Canceled (or DeadlineExceeded) and the cause. Nil while ctx
// has not ended.
func Of(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}
