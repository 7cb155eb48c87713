package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/internal/guardian"
	"github.com/zenws/zenws/internal/pidname"
	"github.com/zenws/zenws/transport"
)

// Props returns the props of a client actor for cfg, to spawn it under a
// parent of your own (its supervisor strategy then decides restarts). Build
// cfg with NewConfig. Get a handle with NewClient.
//
// The actor dials as soon as it starts. It fails (panics with a
// *GiveUpError) when its reconnect attempts are spent (never with
// RetryForever, the way to start one while its venue is down), so that its
// parent's strategy can restart it; state that must survive a restart (configuration,
// counters, the inbound queue) is kept per PID, and a restarted instance
// carries on with it. A fatal error stops it instead. Spawned from the root
// context without actor.WithGuardian, the default guardian restarts it up to
// 10 times in 10 s; Connect gives its clients a guardian that stops them.
func Props(cfg Config) *actor.Props {
	props := &cfg // shared by every instance, read only: an instance holds a pointer, not a copy
	return actor.PropsFromProducer(func() actor.Actor { return &clientActor{props: props} })
}

// registeredProps are the props of the clients Connect and Spawn start:
// their durable state (configuration included) is registered under the PID
// before the actor is spawned, so the props carry no configuration and one
// serves every client (a Props and a Config copy per client otherwise).
// connectProps adds Connect's guardian, which stops a failed client.
var (
	registeredProps = actor.PropsFromProducer(func() actor.Actor { return &clientActor{} })
	connectProps    = actor.PropsFromProducer(func() actor.Actor { return &clientActor{} },
		actor.WithGuardian(guardian.Stop))
)

// errReconnectRequested ends a connection replaced by Client.Reconnect.
var errReconnectRequested = errors.New("zenws: reconnect requested")

// clientActor is one instance of a client actor: a state machine over
// sessions (session.go has the diagram). Everything here is touched only on
// the actor's goroutine.
type clientActor struct {
	props *Config // what Props was given (read only): the durable state's on the first start; nil for spawn's clients
	cfg   *Config // the one configuration, the durable state's (&d.cfg)
	d     *durable
	sys   *actor.ActorSystem
	self  *actor.PID

	life *life // cancelled when this instance stops or restarts (teardown)

	cur     *session // the current session: in its connect pipeline (setup) or live; nil while dialing
	gen     uint64   // cur's generation, or the last one's while there is none (Health, StateChange)
	state   State    // the public state, derived from the phase by enter
	lastErr error
	stopErr error // why the actor stops for good; nil for a clean stop
	lastHB  heartbeat

	// phase is where the state machine is (session.go), changed only by
	// enter; beside dialing, so that the two share a word.
	phase phase

	// While dialing (phaseDialing).
	dialing    bool // a dial is in flight (else the next waits its backoff)
	attempts   int  // dials in the current healing episode
	limit      int  // dials allowed in this episode before giving up
	retryTimer *time.Timer
	retrySeq   uint64

	waiters []chan error // Reconnect callers

	// Planned rotation (rotate.go).
	rot         *rotation   // the replacement being set up (phaseRotating)
	rotTimer    *time.Timer // the current connection's age
	rotFailures int
	retiring    []*session // replaced sessions, draining
	merge       *merge     // while two connections overlap
	mergeFloor  uint64     // frames of older connections are stragglers of a merge

	// Life cycle (lifecycle.go).
	upSince time.Time          // when the client last became connected (rotations keep it)
	pacer   *ratelimit.Limiter // the host dial pacer of this client's system; nil: off

	// Maintenance notices (rotate.go).
	lastRotation time.Time // when the latest rotation started
	noticeGen    uint64    // the connection whose notice was acted on
	noticeStreak int       // notice rotations in a row on young connections

	// Operator's view (health.go).
	nextRetry time.Time // when the scheduled redial fires; zero: none scheduled
}

// Receive dispatches the actor's messages, each to one short method.
func (a *clientActor) Receive(ctx actor.Context) {
	defer a.recordPanic()
	if a.d == nil {
		if _, ok := ctx.Message().(*actor.Started); !ok {
			return // an instance that never started (see started)
		}
	}
	switch m := ctx.Message().(type) {
	case *frameMsg:
		a.route(m)
	case *actor.Started:
		a.started(ctx)
	case *dialResult:
		a.dialed(ctx, m)
	case *connLost:
		a.connLost(ctx, m)
	case *redial:
		if m.owner == a && m.seq == a.retrySeq && a.phase == phaseDialing {
			a.dial()
		}
	case *hbTick:
		a.heartbeatTick(ctx, m)
	case *pingResult:
		a.pingDone(ctx, m)
	case *setupDone:
		a.setupDone(ctx, m)
	case *releaseHold:
		a.releaseHeld(m)
	case *rotateNow:
		a.startRotation(m)
	case *rotateDialed:
		a.rotationDialed(m)
	case *retire:
		a.retireConn(m)
	case *retired:
		a.connRetired(m.gen)
	case *reconnectReq:
		a.reconnect(m)
	case *snapshotDone:
		a.snapshotFetched(m)
	case *resubscribedMsg:
		a.resubscribeConfirmed(m)
	case *guardTick:
		a.tick()
	case *intentChanged:
		a.d.publishQueued.Store(false)
		a.publish()
	case *watchHealthMsg:
		a.watchHealth(ctx, m.Watcher)
	case *unwatchHealthMsg:
		a.unwatchHealth(ctx, m.Watcher)
	case *actor.Terminated:
		if a.cfg.Subscriber != nil && m.Who.Equal(a.cfg.Subscriber) {
			a.d.log.Warn("subscriber actor stopped: inbound messages are dropped and counted from now on")
			a.d.in.setDeliver(nil)
		}
		a.unwatchHealth(ctx, m.Who)
	case *actor.Restarting:
		a.d.restarts.Add(1)
		a.teardown(ErrDisconnected)
	case *actor.Stopping:
		a.teardown(ErrClosed)
	case *actor.Stopped:
		a.stopped()
	}
}

// connLost: the reader of session m.gen saw its connection end.
func (a *clientActor) connLost(ctx actor.Context, m *connLost) {
	s, r := a.sessionOf(m.gen)
	switch {
	case r == roleCurrent:
		a.currentFailed(ctx, m.err)
	case r == roleNext:
		a.rotationFailed(m.err)
	case r == roleRetiring:
		a.retiringLost(s, m.err)
	}
}

// recordPanic keeps the cause of a panic in the actor that is not its
// own give-up (a bug, or user code the library does not guard): Health and
// the StopReason name it as a *PanicError, and the panic goes on to the
// parent's strategy as any failure does.
func (a *clientActor) recordPanic() {
	r := recover()
	if r == nil {
		return
	}
	if _, giveUp := r.(*GiveUpError); !giveUp && a.d != nil {
		pe := &PanicError{Where: "client actor", Value: r}
		a.lastErr, a.stopErr = pe, pe
		a.publish()
		a.d.log.Error("client actor panicked", zap.Error(pe)) // last: the logger may be what panicked
	}
	panic(r)
}

func (a *clientActor) started(ctx actor.Context) {
	a.sys, a.self = ctx.ActorSystem(), ctx.Self()
	if _, alive := a.sys.ProcessRegistry.Get(a.self); !alive {
		// A restart that Proto.Actor delivers after the actor has already
		// stopped (a parent stopping while handling the failure): there is
		// no actor left to serve, so do nothing, above all not dial.
		a.enter(phaseStopping)
		return
	}
	reg := clients(a.sys)
	if d, ok := reg.Load(a.self.Id); ok {
		a.d = d
	} else if a.props == nil {
		// Spawned by spawn, which registers the durable state first: it is
		// gone, so the client has stopped for good.
		ctx.Stop(a.self)
		return
	} else {
		cfg := *a.props
		if cfg.Logger == nil {
			cfg.Logger = nopLogger
		}
		a.d = reg.LoadOrStore(a.self.Id, newDurable(a.sys, a.self, cfg))
	}
	a.cfg = &a.d.cfg
	// A restarted instance carries on from the state its predecessor last
	// set, so that StateChanges stay one chain across restarts.
	a.state = a.d.state
	a.life = newLife()
	if err := a.cfg.Validate(); err != nil {
		a.fatal(ctx, err)
		return
	}
	if a.d.closing.Load() {
		ctx.Stop(a.self)
		return
	}
	if a.cfg.Subscriber != nil {
		ctx.Watch(a.cfg.Subscriber)
	}
	for _, w := range a.d.watching() { // a restart: watch them again
		ctx.Watch(w)
	}
	a.limit = 1 + a.cfg.RetryCount
	a.pacer = hostPacer(a.sys, *a.cfg)
	a.gen = a.d.generation.Load()
	if a.gen == 0 && a.d.retries == 0 {
		a.setState(StateConnecting)
		a.dial()
		return
	}
	// A restart: the backoff sequence carries on from where the previous
	// instance left it, so a client that keeps failing cannot spin through
	// its supervisor's budget.
	a.lastErr = a.d.snap.Load().LastError // Health.LastError survives the restart (already scrubbed)
	a.setState(StateReconnecting)
	a.scheduleRetry()
}

// dial starts one dial in a goroutine; its result comes back as a message.
// Only one dial is ever in flight per client.
func (a *clientActor) dial() {
	if a.phase != phaseDialing || a.dialing {
		return
	}
	a.dialing = true
	a.attempts++
	a.nextRetry = time.Time{}
	a.publish() // Health.Attempt counts the dial in flight
	sys, self, owner := a.sys, a.self, a
	a.dialInBackground(a.life, &a.d.dialed, func(conn *transport.Conn, pings *serverPings, err error) {
		if errors.Is(err, errDialLimiter) { // it can never admit a dial
			err = &FatalError{Err: err}
		}
		sys.Root.Send(self, &dialResult{owner: owner, conn: conn, pings: pings, err: err})
	})
}

// errDialLimiter marks a dial the dial limiter refused for good (not
// because ctx ended).
var errDialLimiter = errors.New("zenws: the dial limiter refused the connection attempt")

// dialInBackground dials in a goroutine, one dial per client ever: after
// the client's previous dial has ended (a restarted instance's, a
// rotation's) and the dial limiter admitted it. The connection waits in
// slot until the actor takes it, so that a stop in between cannot leak it;
// report gets the result unless ctx ended first (then the connection is
// closed here).
func (a *clientActor) dialInBackground(ctx context.Context, slot *atomic.Pointer[transport.Conn], report func(*transport.Conn, *serverPings, error)) {
	d := a.d
	pings := new(serverPings)
	opts := a.cfg.transportOptions(d.onServerPing(pings)) // records, charges the pong, guards against a flood (pacing.go)
	url, dialLimit, pacer := a.cfg.URL, a.cfg.DialLimiter, a.pacer
	if d.generation.Load() == 0 && d.retries == 0 && a.attempts <= 1 {
		// A client's first dial is the program starting it, not a drop:
		// the host pacer spreads reconnects only.
		pacer = nil
	}
	done := make(chan struct{})
	prev := d.lastDial.Swap(&done)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			close(done)
			d.lastDial.CompareAndSwap(&done, nil) // an ended dial keeps no channel
		}()
		if prev != nil {
			select {
			case <-*prev:
			case <-ctx.Done():
				return
			}
		}
		if dialLimit != nil {
			waited, err := dialLimit.WaitFor(ctx, ratelimit.Frame{})
			if err != nil {
				if ctx.Err() == nil && !d.isStopped() {
					report(nil, pings, fmt.Errorf("%w (%s): %w", errDialLimiter, dialLimit.Name(), err))
				}
				return
			}
			if waited > 0 {
				d.log.Info("connection attempt paced by the dial limiter", zap.String("limiter", dialLimit.Name()), zap.Duration("waited", waited))
			}
		}
		if pacer != nil {
			waited, err := pacer.WaitFor(ctx, ratelimit.Frame{})
			if err != nil {
				return // ctx ended (the pacer's waits have no deadline)
			}
			if waited > 0 {
				d.log.Debug("connection attempt paced by the host dial pacer", zap.Duration("waited", waited))
			}
		}
		var conn *transport.Conn
		err := guard("dial", func() (err error) { conn, err = transport.Dial(ctx, url, opts); return err })
		if conn != nil {
			slot.Store(conn)
		}
		if ctx.Err() != nil || d.isStopped() {
			if conn != nil && slot.CompareAndSwap(conn, nil) {
				_ = conn.CloseNow()
			}
			return
		}
		report(conn, pings, err)
	}()
}

func (a *clientActor) dialed(ctx actor.Context, m *dialResult) {
	if m.conn != nil && !a.d.dialed.CompareAndSwap(m.conn, nil) {
		return // a stop got there first and closed it
	}
	if m.owner != a || a.phase != phaseDialing {
		if m.conn != nil {
			_ = m.conn.CloseNow()
		}
		return
	}
	a.dialing = false
	if m.err != nil {
		a.lastErr = m.err
		a.attemptFailedLog("dial", m.err)
		var fe *FatalError
		switch {
		case errors.As(m.err, &fe):
			a.fatal(ctx, fe.Err)
		case !transport.IsRecoverable(m.err):
			a.fatal(ctx, m.err)
		case a.attemptsSpent():
			a.giveUp()
		default:
			a.scheduleRetry() // publishes, with NextRetry
		}
		return
	}
	a.connected(m.conn, m.pings)
}

// connected starts the session of a connection just dialed: its connect
// pipeline (hooks that must come first, such as re-authentication, then
// the subscription restore) runs before the client reports itself
// connected.
func (a *clientActor) connected(conn *transport.Conn, pings *serverPings) {
	d := a.d
	s := a.openSession(conn, pings, a.cfg.RestoreSubscriptions)
	a.cur, a.gen = s, s.gen
	a.newEpoch() // not a rotation's: the stream has a hole here (sequence.go)
	a.enter(phaseSetup)
	a.startHeartbeat()
	if len(d.cfg.ConnectHooks) == 0 && d.intent.count() == 0 {
		a.ready()
		return
	}
	a.setup(s, false)
}

// setup runs the connect hooks and then converges the new session s to the
// wanted set (the restore), off the actor's goroutine; setupDone finishes
// the connect (or the rotation). With prove (a rotation's new connection,
// which the client may still refuse for the old one), a ping round trip
// after the restore shows the connection alive past its last answer: a
// venue that closes right behind the restore's answers is seen before the
// switch, not after it.
func (a *clientActor) setup(s *session, prove bool) {
	d, sys, self, life := a.d, a.sys, a.self, a.life
	conn, gen, ss := s.conn, s.gen, s.subs
	d.setups.Add(1)
	go func() {
		defer d.setups.Done()
		defer d.setupRuns()()
		m := &setupDone{gen: gen}
		st := &Setup{d: d, conn: conn, gen: gen}
		if m.hookErr = d.runHooks(life, st); m.hookErr == nil {
			// The restore as a whole is bounded by RequestTimeout (and
			// ends with this instance): what it did not get to is left to
			// the worker once the connection is live.
			ctx, cancel := context.WithTimeout(life, d.cfg.RequestTimeout)
			d.log.Debug("restoring subscriptions", zap.Uint64("generation", gen), zap.Int("wanted", d.intent.count()))
			m.failed, m.restoreErr = d.restore(ctx, ss)
			if m.restoreErr == nil {
				d.log.Debug("subscriptions restored", zap.Uint64("generation", gen))
			}
			cancel()
			// The stages the hooks left for after the restore (a venue's
			// reconcile: Setup.AfterRestore), then the rotation's proof.
			m.hookErr = d.runAfter(life, st)
			ctx, cancel = context.WithTimeout(life, d.cfg.RequestTimeout)
			if prove && m.restoreErr == nil && m.hookErr == nil {
				d.chargeControl()
				if _, err := conn.Ping(ctx); err != nil {
					m.hookErr = fmt.Errorf("the new connection did not answer a ping after its restore: %w", err)
				}
			}
			cancel()
		}
		if !d.isStopped() {
			sys.Root.Send(self, m)
		}
	}()
}

// setupDone: the connect pipeline of session m.gen has run. The current
// session in setup goes live; a rotation's replacement switches over.
func (a *clientActor) setupDone(ctx actor.Context, m *setupDone) {
	switch _, r := a.sessionOf(m.gen); {
	case r == roleNext:
		a.rotationSetUp(m)
		return
	case r != roleCurrent || a.phase != phaseSetup:
		return // a session given up meanwhile
	}
	if m.hookErr != nil {
		a.attemptFailed(ctx, m.hookErr)
		return
	}
	if m.restoreErr != nil {
		a.d.extras().restoreLog.log(a.d.log, zap.WarnLevel, "restoring subscriptions failed; connected without them, retrying with backoff",
			zap.Int("failed", len(m.failed)), zap.Strings("channels", firstN(m.failed, 20)), zap.Error(m.restoreErr))
		if fn := a.cfg.OnRestoreFailed; fn != nil {
			self, chs, err := a.self, m.failed, a.d.scrub(m.restoreErr)
			a.d.in.call(func() { fn(self, chs, err) })
		}
	}
	a.ready()
}

// attemptFailed ends a connection that did not make it through the connect
// pipeline: like a failed dial, it counts against the retry budget and
// waits the next backoff (or stops the client when err is fatal).
func (a *clientActor) attemptFailed(ctx actor.Context, err error) {
	a.dropConn(err, phaseDialing)
	a.attemptFailedLog("connect pipeline", err)
	var fe *FatalError
	switch {
	case errors.As(err, &fe):
		a.fatal(ctx, fe.Err)
	case a.attemptsSpent():
		a.giveUp()
	default:
		a.scheduleRetry() // publishes, with NextRetry
	}
}

// attemptFailedLog reports a failed connection attempt at WARN (at most
// once a second per client: see limitedLine). stage says where it failed:
// "dial" (TCP, TLS, handshake, the dial limiter) or "connect pipeline" (a
// connect hook, or the connection lost before it was ready).
func (a *clientActor) attemptFailedLog(stage string, err error) {
	a.d.extras().attemptLog.log(a.d.log, zap.WarnLevel, "connection attempt failed", zap.String("stage", stage),
		zap.Int("attempt", a.attempts), zap.Int("allowed", a.limit), zap.Error(err))
}

// ready publishes the connection and reports the client connected. The
// attempt counts carry on: they start again only when this connection
// proves stable (see lose), so a venue that accepts and drops climbs the
// backoff ladder and runs out of attempts.
func (a *clientActor) ready() {
	d := a.d
	a.upSince = time.Now()
	d.conn.Store(a.cur)
	d.intent.promote(a.gen)
	a.releaseHolds(a.gen) // what a hook held and never released
	a.enter(phaseLive)    // StateConnected
	a.scheduleRotation()
	if a.gen > 1 {
		d.extras().healLog.log(d.log, zap.InfoLevel, "reconnected", zap.Uint64("generation", a.gen), zap.Int("attempt", a.attempts))
	} else {
		d.log.Info("connected", zap.Uint64("generation", a.gen))
	}
	a.replyWaiters(nil)
	if fn := a.cfg.OnConnect; fn != nil {
		self := a.self
		d.in.call(func() { fn(self) })
	}
}

// startReader runs session s's reader: every frame goes to the actor
// tagged with its generation, and the error that ends the connection too.
// The frames in flight to the actor are bounded (gate.go): past the bound
// the reader waits, and the venue sees a slow reader.
func (a *clientActor) startReader(s *session) {
	d, sys, self := a.d, a.sys, a.self
	conn, gen, pings := s.conn, s.gen, s.pings
	gate := new(frameGate)
	if pings != nil { // for the ping-flood guard (pacing.go)
		pings.target.Store(&pingTarget{conn: conn, gen: gen})
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if pings != nil {
			defer pings.target.Store(nil)
		}
		for {
			typ, data, err := conn.Read()
			if err != nil {
				// ErrClosed: the actor closed this connection itself and
				// knows; reporting would only make a dead letter.
				if !errors.Is(err, transport.ErrClosed) && !d.isStopped() {
					sys.Root.Send(self, &connLost{gen: gen, err: err})
				}
				return
			}
			d.msgsIn.Add(1)
			d.rec.record(dirIn, typ, data, gen)
			if m, consumed := d.inbound(conn, gen, typ, data); !consumed {
				if err := gate.enter(int64(len(data)), conn.Done(), d.stopped, actorStallLimit); err != nil {
					if errors.Is(err, ErrActorStalled) {
						d.log.Warn("the client actor is not taking frames: closing the connection", zap.Error(err))
						_ = conn.CloseNow()
					} else if err = conn.Err(); err == nil || errors.Is(err, transport.ErrClosed) {
						return // the client stopped, or the actor closed it and knows
					}
					if !d.isStopped() { // a write failed it meanwhile, or the stall
						sys.Root.Send(self, &connLost{gen: gen, err: err})
					}
					return
				}
				m.gate = gate
				sys.Root.Send(self, m)
			}
		}
	}()
}

// inbound is the reader's half of routing: a response goes straight to
// its waiting request (the actor is not on the request path), or is dropped
// when its request gave up; anything else becomes a message for the actor,
// with its JSON envelope already peeked.
func (d *durable) inbound(conn *transport.Conn, gen uint64, typ websocket.MessageType, data []byte) (*frameMsg, bool) {
	at := time.Now()
	d.lastIn.Store(at.UnixNano()) // Health.LastInbound
	var env jsonrpc.Envelope
	isJSON := false
	if typ == websocket.MessageText {
		if d.textPong(gen, data) {
			return nil, true // the venue's text heartbeat answered (heartbeat.go)
		}
		if r, ok := d.cfg.correlate(data); ok { // a venue's own answers (OKX's events)
			if key, ok := parseKey(r.ID); ok && d.pending.resolve(key, conn, data, heapResponse(r), jsonrpc.Envelope{}) {
				return nil, true
			}
		}
		env, isJSON = jsonrpc.Peek(data)
		if isJSON && env.ID != nil && (env.Result != nil || env.Error != nil) {
			if key, ok := parseKey(env.ID); ok && d.pending.resolve(key, conn, data, nil, env) {
				return nil, true
			}
		}
	}
	return &frameMsg{gen: gen, typ: typ, data: data, at: at, env: env, isJSON: isJSON}, false
}

// heapResponse moves r to the heap; a call of its own, so that a frame no
// Correlator matched costs no allocation (r escaping in inbound did).
func heapResponse(r venue.Response) *venue.Response { return &r }

// currentFailed ends the current session for err: during its connect
// pipeline that is a failed attempt (it counts against the retry budget and
// waits its backoff), once live a lost connection.
func (a *clientActor) currentFailed(ctx actor.Context, err error) {
	if a.phase == phaseSetup {
		a.attemptFailed(ctx, err)
		return
	}
	a.lose(ctx, err)
}

// lose handles the end of the current connection: reconnect, or stop when
// reconnecting is off.
func (a *clientActor) lose(ctx actor.Context, err error) {
	if !a.cfg.ReconnectOnError {
		a.dropConn(err, phaseStopping)
		a.d.log.Warn("connection lost; reconnecting is off, stopping", zap.Error(err))
		a.stopErr = err
		ctx.Stop(a.self)
		return
	}
	a.dropConn(err, phaseDialing)
	a.d.reconnects.Add(1)
	stable := time.Since(a.upSince) >= a.cfg.StableAfter
	a.d.extras().lossLog.log(a.d.log, zap.WarnLevel, "connection lost; reconnecting", zap.Uint64("generation", a.gen), zap.Bool("stable", stable), zap.Error(err))
	if stable {
		// It was up long enough: a new episode, and its first redial
		// costs a dial, not a wait.
		a.d.retries, a.attempts, a.limit = 0, 0, a.cfg.RetryCount
		if a.limit == 0 {
			a.giveUp()
			return
		}
		a.cancelRetry()
		a.dial()
		return
	}
	// Lost soon after connecting: the episode goes on, up the ladder.
	if a.attemptsSpent() {
		a.giveUp()
		return
	}
	a.scheduleRetry()
}

// dropConn ends the current session (in setup or live) and everything tied
// to it, and enters phase to: dialing (StateReconnecting from live), or
// stopping when the client will not reconnect.
func (a *clientActor) dropConn(err error, to phase) {
	a.stopHeartbeat()
	a.stopRotationTimer()
	a.abortRotation(err)
	a.closeRetiring()
	a.lastErr = err
	if s := a.cur; s != nil {
		a.cur, a.lastHB = nil, s.hb
		a.d.conn.Store(nil)
		a.closeSession(s)
		a.d.pending.failAll(a.d.scrub(fmt.Errorf("%w: %w", ErrDisconnected, err)))
	}
	a.enter(to)
}

// scheduleRetry waits the next backoff, then dials: the k-th wait since the
// last working connection is uniform in [0, min(MaxBackoff,
// RetryDelay*2^(k-1))].
func (a *clientActor) scheduleRetry() {
	a.cancelRetry()
	a.d.retries++
	delay := backoff(a.d.retries, a.cfg.RetryDelay, a.cfg.MaxBackoff)
	sys, self, msg := a.sys, a.self, &redial{owner: a, seq: a.retrySeq}
	a.nextRetry = time.Now().Add(delay)
	a.retryTimer = time.AfterFunc(delay, func() { sys.Root.Send(self, msg) })
	a.publish() // Health.NextRetry
}

// cancelRetry stops a scheduled retry, including one whose message is
// already in the mailbox.
func (a *clientActor) cancelRetry() {
	if a.retryTimer != nil {
		a.retryTimer.Stop()
	}
	a.retrySeq++
	a.nextRetry = time.Time{}
}

// giveUp fails the actor so that its supervisor decides: restart it (the
// PID and durable state stay) or stop it.
func (a *clientActor) giveUp() {
	err := &GiveUpError{Attempts: a.attempts, Last: a.d.scrub(a.lastErr), FirstConnect: a.upSince.IsZero()}
	a.lastErr, a.stopErr = err, err
	a.publish()
	a.d.log.Warn("giving up", zap.Error(err))
	a.replyWaiters(err)
	panic(err)
}

// fatal stops the client for good: reconnecting cannot help.
func (a *clientActor) fatal(ctx actor.Context, err error) {
	fe := &FatalError{Err: a.d.scrub(err)}
	a.lastErr, a.stopErr = fe, fe
	a.d.log.Error("fatal error, stopping", zap.Error(err))
	a.replyWaiters(fe)
	ctx.Stop(a.self)
}

func (a *clientActor) reconnect(m *reconnectReq) {
	if a.stopping() {
		m.reply <- ErrClosed
		return
	}
	a.waiters = append(a.waiters, m.reply)
	if a.cur != nil {
		a.dropConn(errReconnectRequested, phaseDialing)
		a.d.reconnects.Add(1)
		a.setState(StateReconnecting) // also from setup: this connection was asked to go
	}
	a.cancelRetry()
	a.d.retries, a.attempts, a.limit = 0, 0, 1+a.cfg.RetryCount
	a.dial()
}

// teardown releases what belongs to this instance: on stop and on restart.
func (a *clientActor) teardown(reason error) {
	if !a.stopping() {
		a.enter(phaseStopping)
	}
	if a.life != nil {
		a.life.cancel()
	}
	a.cancelRetry()
	a.stopHeartbeat()
	a.stopRotationTimer()
	if a.d == nil {
		return
	}
	a.abortRotation(ErrClosed)
	a.closeRetiring()
	if conn := a.d.dialed.Swap(nil); conn != nil {
		_ = conn.CloseNow()
	}
	if s := a.cur; s != nil {
		a.cur, a.lastHB = nil, s.hb
		a.d.conn.Store(nil)
		a.d.intent.close(s.gen)
		a.d.pending.failAll(fmt.Errorf("%w: the client is stopping", ErrDisconnected))
		a.d.wg.Add(1)
		go func() {
			defer a.d.wg.Done()
			_ = s.conn.Close(websocket.StatusNormalClosure, "client closing")
		}()
	}
	a.d.pending.stop()
	a.replyWaiters(reason)
}

// replyWaiters answers every Reconnect caller (each reply channel has room
// for one answer).
func (a *clientActor) replyWaiters(err error) {
	for _, w := range a.waiters {
		w <- err
	}
	a.waiters = nil
}

func (a *clientActor) stopped() {
	d := a.d
	if d == nil {
		return
	}
	clients(a.sys).CompareAndDelete(a.self.Id, d)
	a.stopGuard()
	a.setState(StateDisconnected)
	var onDisconnect func()
	if fn := a.cfg.OnDisconnect; fn != nil {
		self := a.self
		onDisconnect = func() { fn(self) }
	}
	d.in.stop(onDisconnect) // queued messages dropped and counted; OnDisconnect after the call in progress
	d.markStopped()
	// The reason is why it stopped (Health.StopReason), not the last
	// connection's error: after a clean stop that is an earlier close.
	switch {
	case a.stopErr != nil:
		d.log.Warn("stopped", zap.NamedError("reason", a.stopErr))
	case d.closing.Load():
		d.log.Info("stopped", zap.String("reason", "closed by user"))
	default:
		d.log.Info("stopped", zap.String("reason", "stopped by its parent"))
	}
}

func (a *clientActor) setState(s State) {
	from := a.state
	a.state, a.d.state = s, s
	a.publish()
	if a.cfg.StateObserver != nil && from != s {
		// Off the actor's goroutine (observe.go): a stuck observer must not
		// stall the actor while frames pile up in its mailbox.
		a.d.obs.push(StateChange{Client: a.self, From: from, To: s, Generation: a.gen, Err: a.changeErr(s)})
	}
}

// changeErr is what a StateChange to s reports: why the connection ended or
// the client stopped.
func (a *clientActor) changeErr(s State) error {
	switch s {
	case StateConnected, StateConnecting:
		return nil
	case StateDisconnected:
		return a.d.scrub(a.stopErr)
	}
	return a.d.scrub(a.lastErr)
}

// publish stores a fresh snapshot for State, Health and balancers.
func (a *clientActor) publish() {
	hb := &a.lastHB // the last session's, while there is none
	if a.cur != nil {
		hb = &a.cur.hb
	}
	h := &snapshot{
		State:             a.state,
		Generation:        a.gen,
		LastError:         a.d.scrub(a.lastErr),
		Heartbeat:         a.cfg.Heartbeat,
		StopReason:        a.d.scrub(a.stopErr),
		HeartbeatFailures: hb.failures,
		LastHeartbeat:     hb.last,
		RTTLast:           hb.lastRTT,
	}
	a.operatorView(h)
	a.d.store(h)
	a.pushHealth()
}

// methodSubscription is a JSON-RPC subscription notification's method.
var methodSubscription = []byte(`"subscription"`)

// route classifies one inbound frame: heartbeats are consumed, everything
// else is queued for the handler or subscriber.
func (a *clientActor) route(m *frameMsg) {
	m.gate.leave(int64(len(m.data)))
	in := &Inbound{Client: a.self, Data: m.data, Generation: m.gen, Received: m.at}
	if m.typ == websocket.MessageBinary {
		in.Kind = KindBinary
		a.deliver(in)
		return
	}
	env, ok := &m.env, m.isJSON
	switch {
	case !ok:
		in.Kind = KindText
		if jsonArray(m.data) { // Kraken and Bitfinex send arrays
			in.Kind = KindJSON
		}
	case a.consumeHeartbeat(m.gen, env, m.data):
		return
	case bytes.Equal(env.Method, methodSubscription):
		in.Kind = KindNotification
		a.d.notifications.Add(1)
		in.Channel, _ = jsonrpc.String(jsonrpc.Field(env.Params, "channel"))
		a.d.intent.seen(in.Channel, m.at)
	case env.ID != nil && (env.Result != nil || env.Error != nil):
		in.Kind, in.ID, in.Unmatched = KindResponse, env.ID, true
	default:
		in.Kind = KindJSON
		switch cl := a.cfg.classify(m.data); {
		case cl.Channel != "" && len(cl.Channel) <= maxChannelName: // a venue's own notification (Binance's combined streams)
			in.Kind, in.Channel = KindNotification, cl.Channel
			a.d.notifications.Add(1)
			a.d.intent.seen(in.Channel, m.at)
		case cl.Maintenance:
			a.maintenanceNotice(m.gen) // bounded: see rotate.go
		}
	}
	a.deliver(in)
}

// jsonArray reports whether data is one valid JSON array.
func jsonArray(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '[' && json.Valid(t)
}

// deliver queues a frame for the handler, unless a hold of its
// connection's takes it (Setup.Hold: backfill.go). The hold comes before
// the merge and the sequence guard, not at the queue push: what it
// releases goes on through them then, on this goroutine and in order, so a
// sequenced channel is checked in the order it is delivered, after the
// backfill, and the guard's state never sees a notification it will not
// deliver yet.
func (a *clientActor) deliver(in *Inbound) {
	if a.d.held(in) {
		return
	}
	a.pass(in)
}

// pass queues a frame for the handler; while two connections overlap
// (rotation), the new one's frames go through the merge (see merge).
func (a *clientActor) pass(in *Inbound) {
	if in.Kind != KindResponse && a.mergeIn(in) {
		return
	}
	a.emit(in)
}

func (a *clientActor) String() string {
	return fmt.Sprintf("zenws client %s (%v)", pidname.String(a.self), a.state)
}
