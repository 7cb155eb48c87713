package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/transport"
)

// ConnectHook runs on every new connection before the client restores its
// subscriptions and reports itself connected: the place for what must come
// first, such as authentication. It talks to the server through s (the
// connection is not published yet, so the client's own Send and Call
// return ErrNotConnected). ctx ends after RequestTimeout, or when the client
// stops or the connection is lost.
//
// A hook that returns an error fails the connection attempt: the client
// closes the connection and tries again with backoff, like after a failed
// dial; an error wrapping *FatalError (see Fatal) stops the client for
// good instead (wrong credentials do not get better by retrying). A hook
// that panics counts as returning an error (a *PanicError).
type ConnectHook func(ctx context.Context, s *Setup) error

// WithConnectHook adds a hook to run on every new connection; hooks run in
// the order they were added, before the subscription restore. Default
// none; a nil hook is ignored.
func WithConnectHook(h ConnectHook) Option {
	return func(c *Config) {
		if h != nil {
			c.ConnectHooks = append(c.ConnectHooks[:len(c.ConnectHooks):len(c.ConnectHooks)], h)
		}
	}
}

// Fatal marks err as fatal for the client: returned from a ConnectHook it
// stops the client instead of retrying.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	var fe *FatalError
	if errors.As(err, &fe) {
		return err
	}
	return &FatalError{Err: err}
}

// Setup is a new connection while its connect hooks run. Its methods
// write on that connection only and are paced by the client's rate limiter
// (they wait for tokens within ctx, whatever the client's RatePolicy). They
// keep working after the hook returns, for as long as that connection is
// open (a token refresh made on the connection the token belongs to), and
// return ErrNotConnected once it has closed.
type Setup struct {
	d     *durable
	conn  *transport.Conn
	gen   uint64
	after []ConnectHook // AfterRestore's stages, run on the setup goroutine
}

// AfterRestore adds a stage to run on this connection after the
// subscription restore and before the client reports it connected (or,
// in a rotation, switches to it): the place for work that needs the
// channels live again, such as a venue's reconcile (fetch what changed,
// deliver it, release a Hold). Stages run in the order they were added,
// each like a ConnectHook (its own RequestTimeout, an error fails the
// attempt, a panic is an error), the first error ending the run. Call it
// from a connect hook; a nil stage is ignored.
func (s *Setup) AfterRestore(stage ConnectHook) {
	if stage != nil {
		s.after = append(s.after, stage)
	}
}

// Client returns a handle on the client the connection belongs to, for
// work a hook schedules for later (a token refresh). Its methods work once
// the client is connected.
func (s *Setup) Client() *Client {
	c := &Client{sys: s.d.sys, pid: s.d.pid}
	c.d.Store(s.d)
	return c
}

// Generation is the connection's generation (Health.Generation once it is
// published).
func (s *Setup) Generation() uint64 { return s.gen }

// Done is closed when the connection ends (lost, replaced, or the client
// stopped): what a hook keeps for the connection (a token) ends with it.
func (s *Setup) Done() <-chan struct{} { return s.conn.Done() }

// Call is Client.Call on this connection.
func (s *Setup) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	return s.d.callMethod(ctx, s.via(), method, params)
}

// Request is Client.Request on this connection. A refusal is an
// *RPCError that errors.As also finds as a *venue.Error (venue.Session).
func (s *Setup) Request(ctx context.Context, msg []byte) (json.RawMessage, error) {
	resp, err := s.d.request(ctx, s.via(), msg)
	var rpc *RPCError
	if errors.As(err, &rpc) {
		// Both errors are wrapped (errors.As finds either); the venue.Error
		// is printed with precision 0, i.e. not at all: the text is the
		// RPCError's alone.
		return resp, fmt.Errorf("%w%.0w", rpc, &venue.Error{Code: rpc.Code, Message: rpc.Message})
	}
	return resp, err
}

// NextID returns a fresh id from the client's own sequence, for a request
// a connect hook or venue builds (venue.Session).
func (s *Setup) NextID() uint64 { return s.d.ids.Add(1) }

// Send is Client.Send on this connection.
func (s *Setup) Send(ctx context.Context, data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("zenws: Send: %w", transport.ErrInvalidUTF8)
	}
	return s.d.write(ctx, s.via(), websocket.MessageText, data)
}

func (s *Setup) via() via { return via{conn: s.conn, pace: paceWait, gen: s.gen} }

// runHooks runs the connect hooks in order; the first error ends the run.
func (d *durable) runHooks(life context.Context, s *Setup) error {
	for i, h := range d.cfg.ConnectHooks {
		// A hook (or the venue's connect work) may have closed the client:
		// no hook runs after Close, which returns without waiting for this
		// goroutine when called from it.
		if d.closing.Load() || life.Err() != nil {
			return fmt.Errorf("zenws: connect hook %d not run: %w", i+1, ErrClosed)
		}
		if err := d.runHook(life, "connect hook", i, len(d.cfg.ConnectHooks), h, s); err != nil {
			return err
		}
	}
	return nil
}

// runAfter runs the stages the hooks added with AfterRestore, in order;
// the first error ends the run.
func (d *durable) runAfter(life context.Context, s *Setup) error {
	for i, h := range s.after {
		if d.closing.Load() || life.Err() != nil {
			return fmt.Errorf("zenws: after-restore stage %d not run: %w", i+1, ErrClosed)
		}
		if err := d.runHook(life, "after-restore stage", i, len(s.after), h, s); err != nil {
			return err
		}
	}
	return nil
}

func (d *durable) runHook(life context.Context, stage string, i, n int, h ConnectHook, s *Setup) (err error) {
	ctx, cancel := context.WithTimeout(life, d.cfg.RequestTimeout)
	defer cancel()
	log := d.log.With(zap.String("stage", stage), zap.Int("hook", i+1), zap.Int("hooks", n), zap.Uint64("generation", s.gen))
	log.Debug("connect hook running")
	start := time.Now()
	defer func() { // runs after the recover below: a panic is logged as its error
		if err != nil {
			log.Debug("connect hook failed", zap.Duration("took", time.Since(start)), zap.Error(err))
		} else {
			log.Debug("connect hook done", zap.Duration("took", time.Since(start)))
		}
	}()
	go func() { // the connection ending ends the hook's ctx
		select {
		case <-s.conn.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("zenws: %s %d: %w", stage, i+1, &PanicError{Where: stage, Value: r})
		}
	}()
	if err := h(ctx, s); err != nil {
		return fmt.Errorf("zenws: %s %d: %w", stage, i+1, err)
	}
	return nil
}
