package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/ctxerr"
	"github.com/zenws/zenws/transport"
)

// Failover: how one balanced operation picks a client, tries it, and moves
// to another when the attempt provably did not reach the wire, or the
// operation is safe to repeat.

// run picks, tries and fails over.
func (b *Balancer) run(ctx context.Context, opts []CallOption, safeByRule bool, op func(context.Context, Endpoint) (json.RawMessage, error)) (json.RawMessage, error) {
	// A nil or already ended ctx sends nothing (actors.ErrNilContext, or
	// ctx's error), and is not a failure of any connection.
	if ctx == nil {
		return nil, actors.ErrNilContext
	}
	if ctx.Err() != nil {
		return nil, ctxerr.Of(ctx)
	}
	co := callOptions{attempts: b.sh.o.attempts, safe: safeByRule}
	if len(opts) > 0 {
		co = applyCallOptions(co, opts)
	}
	if co.attempts < 1 {
		return nil, &actors.ConfigError{Field: "CallMaxAttempts", Problem: fmt.Sprintf("must be at least 1, got %d", co.attempts)}
	}
	attempts, safe := co.attempts, co.safe
	var excluded []*member
	// last is the latest attempt's error; lost the first that may have
	// reached the server. A later attempt's "not connected" must not hide
	// that an earlier one was sent: the final error carries both.
	var last, lost error
	for try := 0; try < attempts; try++ {
		if try > 0 {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w (after: %w)", ctxerr.Of(ctx), withLost(last, lost))
			}
		}
		t := b.sh.table.Load()
		now := time.Now().UnixNano()
		m := b.sh.o.strategy.pick(t.candidates(excluded), now, &b.sh.turn)
		if m == nil {
			select {
			case <-b.sh.stopped:
				return nil, withLost(ErrStopped, lost)
			default:
			}
			if last == nil {
				b.sh.noConns.Add(1)
				return nil, ErrNoConnections
			}
			return nil, withLost(last, lost) // every client was tried
		}
		m.picks.Add(1)
		m.outstanding.Add(1)
		start := time.Now()
		resp, err := op(ctx, m.ep)
		m.outstanding.Add(-1)
		if err == nil || isRPCError(err) {
			if resp != nil {
				m.observe(time.Since(start), time.Now().UnixNano())
			}
			return resp, err
		}
		now = time.Now().UnixNano()
		if sentAndLost(err) {
			m.observeFailure(time.Since(start), now)
			if lost == nil {
				lost = err
			}
		}
		m.recordError(now)
		if !retryable(err, safe) {
			return resp, withLost(err, lost)
		}
		last = err
		excluded = append(excluded, m)
		if try+1 < attempts && len(t.eligible) > len(excluded) {
			b.sh.failovers.Add(1)
		}
	}
	return nil, fmt.Errorf("%w (%d): %w", ErrMaxAttempts, attempts, withLost(last, lost))
}

// withLost is last, or, when last says nothing was sent but an earlier
// attempt may have reached the server (lost), an error that wraps both:
// errors.Is finds ErrDisconnected (or ErrTimeout) whenever any attempt may
// have been sent, whatever ended the operation (the last attempt, the
// caller's ctx, Stop).
//
// The combined error does not match the errors that say nothing was sent
// (ErrNotConnected, ErrRateLimited, ErrClosed, ErrNotFound,
// transport.ErrNotSent), though the last attempt's did: of the operation,
// that is no longer true, and a caller that resends on them would send
// twice. It matches everything else the last error does (the caller's
// context.Canceled, its cause, ErrStopped), and the earlier loss.
func withLost(last, lost error) error {
	if lost == nil || last == lost || sentAndLost(last) {
		return last
	}
	return &lostError{last: last, lost: lost}
}

// lostError is withLost's error: last, after an earlier attempt's lost.
type lostError struct{ last, lost error }

func (e *lostError) Error() string {
	return e.last.Error() + " (an earlier attempt: " + e.lost.Error() + ")"
}

// Unwrap is the earlier loss: errors.As and errors.Is reach it, and last
// only through Is and As.
func (e *lostError) Unwrap() error { return e.lost }

// As finds target in last first (a typed cause of the caller's
// cancellation, a *cluster.RemoteError, a *net.OpError), then, through
// Unwrap, in the earlier loss. No error type says "not sent".
func (e *lostError) As(target any) bool { return errors.As(e.last, target) }

// Is reports whether last matches target, unless target says nothing was
// sent.
func (e *lostError) Is(target error) bool {
	if saysNotSent(target) {
		return false
	}
	return errors.Is(e.last, target)
}

// saysNotSent: target is one of the errors that say an operation provably
// never reached the server.
func saysNotSent(target error) bool {
	switch target {
	case actors.ErrNotConnected, actors.ErrRateLimited, actors.ErrClosed, actors.ErrNotFound, transport.ErrNotSent:
		return true
	}
	return false
}

// applyCallOptions applies opts to co; a function of its own so that a
// call without options does not move co to the heap.
func applyCallOptions(co callOptions, opts []CallOption) callOptions {
	for _, opt := range opts {
		if opt != nil {
			opt(&co)
		}
	}
	return co
}

// isRPCError: the venue answered (with an error object); the connection
// works.
func isRPCError(err error) bool {
	var rpcErr *actors.RPCError
	return errors.As(err, &rpcErr)
}

// sentAndLost: the operation was sent (or may have been) and its answer
// never came: a timeout (the client's, or the caller's deadline), a
// connection lost with it in flight. Not a caller's cancellation, and not
// the errors that say nothing was sent.
func sentAndLost(err error) bool {
	if unsent(err) {
		return false // it timed out before any byte of it was written
	}
	return errors.Is(err, actors.ErrTimeout) || errors.Is(err, actors.ErrDisconnected) ||
		errors.Is(err, context.DeadlineExceeded)
}

// unsent: err says no byte of the operation was written (a request that
// ended waiting for its tokens or its turn to write), and not that a
// connection was lost with it.
func unsent(err error) bool {
	return errors.Is(err, transport.ErrNotSent) && !errors.Is(err, actors.ErrDisconnected)
}

// retryable: the operation provably did not reach the server, or it is
// safe to repeat and failed in a way another connection may not.
func retryable(err error, safe bool) bool {
	switch {
	case errors.Is(err, actors.ErrNotConnected), errors.Is(err, actors.ErrRateLimited),
		errors.Is(err, actors.ErrClosed), errors.Is(err, actors.ErrNotFound):
		return true
	case errors.Is(err, actors.ErrInvalidRequest), errors.Is(err, actors.ErrDuplicateID),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, actors.ErrTimeout):
		return false
	case unsent(err):
		return true // a request timed out waiting to be written: another client may have room
	case safe && (errors.Is(err, actors.ErrDisconnected) || errors.Is(err, actors.ErrTimeout)):
		return true
	}
	return false
}
