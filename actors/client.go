package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/pidname"
	"github.com/zenws/zenws/transport"
)

// Client is a handle on a client actor. Its methods are safe for concurrent
// use. Sends write straight to the connection the actor published (no
// message to the actor on the hot path); State and Health read a snapshot
// the actor published.
type Client struct {
	sys *actor.ActorSystem
	pid *actor.PID
	d   atomic.Pointer[durable]
}

// Connect spawns a client actor for url on sys and waits until it is
// connected. It makes up to 1 + RetryCount attempts with full-jitter
// backoff (with RetryForever, as many as ctx allows), bounded by ctx, and
// returns the last error; a fatal error (for example a 401 handshake)
// returns at once. On any error no actor is left behind (a connect hook
// that ignores its ctx may still be running, and ends when it returns).
//
// A client started with Connect has no supervisor: when its reconnect
// attempts after a lost connection are spent, it stops and OnDisconnect
// runs. To have it restarted, start it from a supervision.Supervisor or
// under your own parent with Props.
func Connect(ctx context.Context, sys *actor.ActorSystem, url string, opts ...Option) (*Client, error) {
	if ctx == nil {
		return nil, fmt.Errorf("zenws: Connect: %w", ErrNilContext) // before anything is spawned
	}
	if sys == nil {
		return nil, errors.New("zenws: Connect: nil actor system")
	}
	cfg, err := NewConfig(url, opts...)
	if err != nil {
		return nil, err
	}
	// The venue's parts are asked here, by ctx: a venue method that does
	// not return (user code) holds its goroutine, not Connect.
	parts := make(chan Config, 1)
	go func() { cfg.venueParts(); parts <- cfg }()
	select {
	case cfg = <-parts:
	case <-ctx.Done():
		return nil, fmt.Errorf("zenws: Connect: the venue's Dialect, RateLimit or TextPing has not returned: %w", context.Cause(ctx))
	}
	if err := cfg.Validate(); err != nil { // a venue method panicked
		return nil, err
	}
	c, err := spawn(sys.Root, connectProps, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.WaitConnected(ctx); err != nil {
		// The actor is gone and OnDisconnect has run when Connect returns,
		// but user code that ignores its ctx (a connect hook, a venue's
		// login stuck past the caller's deadline) is not waited for: it
		// ends when it returns.
		_ = c.stopAndWait(c.d.Load(), waitDelivery)
		return nil, err
	}
	return c, nil
}

// Spawn spawns a client actor for cfg as a child of parent (the
// actor.Context of your own parent actor, or sys.Root) and returns its
// handle at once, without waiting for the connection (use WaitConnected).
// The parent's supervisor strategy decides restarts; see Props.
func Spawn(parent actor.SpawnerContext, cfg Config) (*Client, error) {
	if parent == nil {
		return nil, errors.New("zenws: Spawn: nil parent")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return spawn(parent, registeredProps, cfg)
}

// spawn registers the client's durable state under the PID it is about to
// get, so that the handle works before the actor has started.
func spawn(parent actor.SpawnerContext, props *actor.Props, cfg Config) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = nopLogger
	}
	sys := parent.ActorSystem()
	name := "zenws-client" + sys.ProcessRegistry.NextId()
	id := name
	if self := parent.Self(); self != nil {
		id = self.Id + "/" + name
	}
	pid := sys.NewLocalPID(id)
	d := newDurable(sys, pid, cfg)
	reg := clients(sys)
	reg.LoadOrStore(pid.Id, d) // a fresh id: nobody else has it
	spawned, err := parent.SpawnNamed(props, name)
	if err != nil {
		reg.CompareAndDelete(pid.Id, d)
		return nil, fmt.Errorf("zenws: spawn client: %w", err)
	}
	if !spawned.Equal(pid) {
		sys.Root.Stop(spawned)
		reg.CompareAndDelete(pid.Id, d)
		return nil, fmt.Errorf("zenws: spawn client: got PID %s, expected %s", pidname.String(spawned), pidname.String(pid))
	}
	c := &Client{sys: sys, pid: pid}
	c.d.Store(d)
	return c, nil
}

// NewClient returns a handle on a client actor spawned with Props (for
// example under your own parent). It resolves the actor on first use;
// before the actor has started, or after it has stopped for good, methods
// return ErrNotFound. Its Done is nil while pid is not a zenws client of
// sys: the way to ask whether it is one.
func NewClient(sys *actor.ActorSystem, pid *actor.PID) *Client {
	return &Client{sys: sys, pid: pid}
}

// PID is the client actor's PID. It stays the same across restarts.
func (c *Client) PID() *actor.PID { return c.pid }

func (c *Client) durable() *durable {
	if d := c.d.Load(); d != nil {
		return d
	}
	if c.sys == nil || c.pid == nil {
		return nil
	}
	d, ok := lookup(c.sys, c.pid)
	if !ok {
		return nil
	}
	c.d.Store(d)
	return d
}

// Send writes data as one text message. It returns ErrNotConnected at once
// while the client is connecting or reconnecting (nothing was sent),
// ErrClosed after Close, an error wrapping transport.ErrInvalidUTF8 when
// data is not valid UTF-8 (nothing was sent), ErrNotConnected (wrapping
// transport.ErrNotSent) when the connection failed before any byte of the
// message left, and ErrDisconnected when it failed during the write (the
// message may or may not have reached the server). ctx bounds only the wait
// for another writer; a write in progress is bounded by the write timeout.
// An already ended ctx returns its error and nothing is sent; a nil ctx
// returns ErrNilContext (so do all of Client's ctx-taking methods).
func (c *Client) Send(ctx context.Context, data []byte) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("zenws: Send: %w (use SendBinary for binary data)", transport.ErrInvalidUTF8)
	}
	return c.write(ctx, websocket.MessageText, data)
}

// SendBinary writes data as one binary message; errors as for Send.
func (c *Client) SendBinary(ctx context.Context, data []byte) error {
	return c.write(ctx, websocket.MessageBinary, data)
}

func (c *Client) write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	return d.write(ctx, via{}, typ, data)
}

// write sends on v.conn, or on the published connection when v.conn is
// nil, after the rate limiter admitted the frame (nothing is sent when it
// does not).
func (d *durable) write(ctx context.Context, v via, typ websocket.MessageType, data []byte) error {
	if err := checkCtx(ctx); err != nil {
		return err // an ended ctx writes nothing
	}
	conn, gen, err := d.admitAndResolve(ctx, v, data)
	if err != nil {
		return err
	}
	return d.writeOn(ctx, conn, gen, typ, data)
}

// admitAndResolve takes the frame's tokens, then names the connection: the
// published connection is read after any wait for tokens, so that a
// rotation meanwhile sends the frame on the new one. Nothing is charged
// while not connected.
func (d *durable) admitAndResolve(ctx context.Context, v via, data []byte) (*transport.Conn, uint64, error) {
	if _, _, err := d.resolve(v); err != nil {
		return nil, 0, err
	}
	if err := d.admit(ctx, v.pace, data); err != nil {
		return nil, 0, err
	}
	return d.resolve(v)
}

// writeOn writes one message on conn, of generation gen, and says what
// became of it. A recording shows the frame with gen: on which connection
// it left (an order, say).
func (d *durable) writeOn(ctx context.Context, conn *transport.Conn, gen uint64, typ websocket.MessageType, data []byte) error {
	var at time.Time
	if d.rec != nil {
		at = time.Now()
	}
	err := conn.Write(ctx, typ, data)
	switch {
	case err == nil:
		d.msgsOut.Add(1)
		d.rec.recordAt(at, dirOut, typ, data, gen)
		return nil
	case errors.Is(err, transport.ErrClosed):
		// Only returned when nothing was written.
		if d.closing.Load() || d.isStopped() {
			return ErrClosed
		}
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	case errors.Is(err, transport.ErrNotSent):
		// The write failed before any byte left: the connection is gone,
		// and the message provably never reached the server.
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return fmt.Errorf("%w: %w", ErrDisconnected, err)
}

// resolve returns the connection v names and its generation: v.conn, or
// the published one.
func (d *durable) resolve(v via) (*transport.Conn, uint64, error) {
	if v.conn != nil {
		return v.conn, v.gen, nil
	}
	lc := d.conn.Load()
	if lc == nil {
		if d.closing.Load() || d.isStopped() {
			return nil, 0, ErrClosed
		}
		return nil, 0, ErrNotConnected
	}
	return lc.conn, lc.gen, nil
}

// State is the client's current state, from its last published snapshot.
func (c *Client) State() State {
	d := c.durable()
	if d == nil {
		return StateDisconnected
	}
	return d.snap.Load().State
}

// Health is a snapshot of the client: state, heartbeat, round trips,
// counters. It never waits for the actor.
func (c *Client) Health() Health {
	d := c.durable()
	if d == nil {
		return Health{State: StateDisconnected}
	}
	return d.health()
}

// ChannelCounts counts the client's channels by state: what
// Health().Channels would list, without building the list. The count is
// kept until the next change of a channel, so asking often (a page, an
// agent reporting to other nodes) costs a scan of the wanted set only after
// a change. Zero when the client is gone.
func (c *Client) ChannelCounts() ChannelCounts {
	d := c.durable()
	if d == nil {
		return ChannelCounts{}
	}
	return d.intent.counts()
}

// Reconnect replaces the current connection with a fresh one now (no
// backoff before the first attempt) and waits until it is connected, bounded
// by ctx (past its deadline, an error wrapping ErrTimeout and
// context.DeadlineExceeded; cancelled, context.Canceled). Configuration,
// handler and callbacks are kept. It returns the reason when the client
// gives up or stops instead.
func (c *Client) Reconnect(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	if d.closing.Load() || d.isStopped() {
		return ErrClosed
	}
	reply := make(chan error, 1)
	c.sys.Root.Send(c.pid, &reconnectReq{reply: reply})
	select {
	case err := <-reply:
		return err
	case <-d.stopped:
		select { // the actor answers before it stops: prefer its reason (a *FatalError)
		case err := <-reply:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctxEnded("reconnect", ctx)
	}
}

// Close stops the client: the connection is closed with code 1000 and the
// actor stops (a normal stop: never reconnected or restarted). Inbound
// messages still queued for the handler or subscriber are dropped, not
// delivered, and counted in Health.InboundDropped (one log line gives the
// number); a handler call in progress finishes, then OnDisconnect runs,
// before Close returns. Close waits for the actor, its goroutines and
// those callbacks, at most CloseWait (default 5 s); past that it returns
// an error wrapping ErrTimeout (a handler or callback that does not return
// is the usual cause) and what has not run yet, OnDisconnect included, is
// skipped and logged, never run later. Either way, once Close has returned
// no handler, callback or StateObserver call starts again (one stuck in
// progress may still be running). Called from the handler or a callback,
// Close runs OnDisconnect itself, on that goroutine, before it returns. A
// second call returns ErrClosed.
func (c *Client) Close() error {
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	if !d.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	return c.stopAndWait(d, waitAll)
}

// What a stop waits for, after the actor has stopped.
const (
	waitAll      = iota // every goroutine of the client (Close, Wait)
	waitDelivery        // the user callbacks queued (OnDisconnect), not the client's own goroutines
)

func (c *Client) stopAndWait(d *durable, what int) error {
	d.closing.Store(true)
	if !d.isStopped() {
		c.sys.Root.Stop(c.pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.CloseWait)
	defer cancel()
	err := c.wait(ctx, d, what)
	if err == nil && d.in.calledFromHandler() {
		// This goroutine is the delivery goroutine: what is still queued
		// (OnDisconnect) runs here, or it would run after Close returned.
		d.in.runHere()
	}
	if err == nil && d.obs.calledFromObserver() {
		d.obs.runHere() // the same for the state changes still queued
	}
	// Nothing starts after Close has returned: on a timeout that skips what
	// has not run yet; otherwise nothing is left.
	d.in.seal()
	d.obs.seal()
	if err != nil {
		return fmt.Errorf("zenws: close: %w", err)
	}
	return nil
}

// Wait waits until the client has stopped for good (Close, a fatal error,
// giving up without a restart, its parent stopping it) and every goroutine
// it started has ended, bounded by ctx. Its error wraps ErrTimeout when ctx
// ends first; ErrNotFound for a handle on an unknown PID.
func (c *Client) Wait(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	return c.wait(ctx, d, waitAll)
}

func (c *Client) wait(ctx context.Context, d *durable, what int) error {
	select {
	case <-d.stopped:
	case <-ctx.Done():
		return fmt.Errorf("the actor has not stopped (%w): %w", ctx.Err(), ErrTimeout)
	}
	done := d.finishedCh()
	// Called from a goroutine of the client's own (the handler or a
	// callback, the state observer, a connect hook): that goroutine ends
	// only once it returns, so wait for the others alone.
	waitFor := func(fns ...func()) {
		ch := make(chan struct{})
		go func() {
			for _, fn := range fns {
				fn()
			}
			close(ch)
		}()
		done = ch
	}
	switch {
	case what == waitDelivery:
		waitFor(d.in.wg.Wait, d.obs.wait)
	case d.in.calledFromHandler():
		waitFor(d.wg.Wait, d.setups.Wait, d.obs.wait)
	case d.obs.calledFromObserver():
		waitFor(d.wg.Wait, d.setups.Wait, d.in.wg.Wait)
	case d.calledFromSetup():
		waitFor(d.wg.Wait, d.in.wg.Wait, d.obs.wait)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("goroutines still running (a handler that does not return?) (%w): %w", ctx.Err(), ErrTimeout)
	}
}

// Done is closed once the client has stopped for good and every goroutine
// it started has ended. For a handle on an unknown PID it is nil.
func (c *Client) Done() <-chan struct{} {
	d := c.durable()
	if d == nil {
		return nil
	}
	return d.finishedCh()
}

// WaitConnected waits until the client is connected (nil), has stopped for
// good (ErrClosed after Close, whatever the last dial said; otherwise why it
// stopped: a *FatalError, a *GiveUpError, else its last error), or ctx ends
// (an error wrapping ctx's error, ErrTimeout past its deadline, and the last
// dial error, if any).
func (c *Client) WaitConnected(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	for {
		if d.snap.Load().State == StateConnected {
			return nil // before changes: the channel would outlive the wait
		}
		changed := d.changes()
		h := d.snap.Load()
		switch {
		case h.State == StateConnected:
			return nil
		case d.isStopped():
			// Read again: h may predate the last snapshot, which the actor
			// publishes just before it reports itself stopped. Why it
			// stopped: Close (ErrClosed, whatever the last dial said), or
			// its stop reason (a give-up, a fatal error), else the last
			// error.
			last := d.snap.Load()
			switch {
			case d.closing.Load():
				return ErrClosed
			case last.StopReason != nil:
				return last.StopReason
			case last.LastError != nil:
				return last.LastError
			}
			return ErrClosed
		}
		select {
		case <-changed:
		case <-d.stopped:
		case <-ctx.Done():
			if last := d.snap.Load().LastError; last != nil {
				return fmt.Errorf("%w (last error: %w)", ctxEnded("wait connected", ctx), last)
			}
			return ctxEnded("wait connected", ctx)
		}
	}
}
