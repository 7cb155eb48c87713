package actors

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/internal/redact"
	"github.com/zenws/zenws/internal/sysreg"
	"github.com/zenws/zenws/transport"
)

// durable is the part of a client that survives supervisor restarts,
// found again by PID in its actor system's registry of clients
// (internal/sysreg). It is grouped by concern: the configuration and
// identity, the session the handle sends on, the statistics, the
// subscription intent, the venue's parts, the life cycle, and what only
// the actor goroutine touches. What must not survive a restart (the
// sessions, timers, heartbeat state) lives in the clientActor instance.
type durable struct {
	// Configuration and identity: set once by newDurable.
	cfg      Config
	sys      *actor.ActorSystem
	pid      *actor.PID
	log      *zap.Logger
	secrets  *redact.Scrubber // this client's secrets, hidden from logs, errors, Health, recordings
	endpoint string           // Health.Endpoint: the URL, redacted
	label    string           // Health.Label (WithLabel), scrubbed

	// The send path: the handle and the actor alike.
	conn    atomic.Pointer[session] // the live session (session.go), published while StateConnected
	ids     atomic.Uint64           // JSON-RPC ids this client issues, heartbeats included
	pending *pendingTable           // requests waiting for their response (correlate.go)

	// The operator's view: the published snapshot and the counters.
	snap    atomic.Pointer[snapshot]
	changed atomic.Pointer[chan struct{}] // closed and cleared by every publish; nil while nobody waits (changes)
	stats
	latency *latencyRing // heartbeat and request round trips
	tel     *telemetry   // nil unless metrics are on
	lastIn  atomic.Int64 // Unix nanoseconds of the last data frame received (Health.LastInbound); 0: none
	// classifierLog limits the classifier-failure log line (logging.go);
	// the actor's own rate-limited lines are in actorExtras.
	classifierLog everySecond

	// Subscriptions (restore.go, subscribe.go).
	intent *intent // wanted subscriptions and what each connection applied

	// Inbound and outbound queues, bounded (inbound.go, observe.go, record.go).
	in  *deliveryQueue
	obs *observerQueue // StateObserver calls, off the actor goroutine
	rec *recorder      // nil unless recording
	// holds are the notifications connect work holds back (backfill.go).
	holds holdSet

	// The venue's parts (venue.go, heartbeat.go).
	textPing    *venue.TextPing                   // the venue's text heartbeat, when the client uses it
	pongs       chan struct{}                     // a text pong arrived on connection pingGen (room for one)
	pingGen     atomic.Uint64                     // the connection whose text ping is in flight
	connLimiter atomic.Pointer[ratelimit.Limiter] // the current connection's (venue.ConnectionLimited)

	// Life cycle (lifecycle.go).
	generation atomic.Uint64
	// dialed holds a connection between a successful dial and the actor
	// taking it, so that a stop in between cannot leak it: whoever swaps it
	// out owns it.
	dialed atomic.Pointer[transport.Conn]
	// lastDial is closed when the latest dial goroutine has ended; it
	// clears it then (nil: no dial running), so an idle client keeps none.
	lastDial atomic.Pointer[chan struct{}]
	wg       sync.WaitGroup // every goroutine the client starts, but the delivery one (in.wg), the observer's (obs) and the setup ones (setups)
	setups   sync.WaitGroup // the setup goroutines (connect hooks, restore)
	setupMu  sync.Mutex
	setupIDs *[]int64                      // their goroutine ids (Close from a connect hook); made by the first: an idle client runs none
	stopped  chan struct{}                 // closed when the actor has stopped for good
	finished atomic.Pointer[chan struct{}] // closed once stopped and every goroutine has ended (finishedCh); nil until asked
	stopOnce sync.Once

	// Flags of the groups above, kept together: each alone would take a
	// word of padding, and the whole struct a larger size class.
	closing       atomic.Bool // Close was called (life cycle)
	publishQueued atomic.Bool // an intentChanged is in the actor's mailbox (subscriptions)
	correlator    bool        // the venue correlates its own answers (venue.Correlator)

	// Only the actor goroutine touches these (one instance at a time).
	extra   *actorExtras // made on first use (extras): nil in an idle client
	retries int          // backoff waits since the last working connection
	state   State        // the state the last instance set: a restarted one's From
}

// actorExtras is the part of the durable state that only the actor
// goroutine touches and an idle client never needs: its health watchers and
// its rate-limited log lines (logging.go). Made on first use, it keeps the
// durable state in a smaller size class.
type actorExtras struct {
	watchers   watchers    // health watchers (WatchHealth)
	lossLog    limitedLine // "connection lost" at WARN, at most once a second
	attemptLog limitedLine // "connection attempt failed" at WARN, at most once a second
	healLog    limitedLine // "reconnected" at INFO, at most once a second
	restoreLog limitedLine // "restoring subscriptions failed" at WARN, at most once a second
	seq        *seqGuard   // sequence guards and freshness (sequence.go); nil until needed
}

// extras returns the actor's extras, made on the first call; on the actor
// goroutine only.
func (d *durable) extras() *actorExtras {
	if d.extra == nil {
		d.extra = new(actorExtras)
	}
	return d.extra
}

// watching is the health watchers (nil: none); on the actor goroutine only.
func (d *durable) watching() watchers {
	if d.extra == nil {
		return nil
	}
	return d.extra.watchers
}

// stats are the client's counters (Health).
type stats struct {
	reconnects    atomic.Uint64
	restarts      atomic.Uint64
	msgsIn        atomic.Uint64
	msgsOut       atomic.Uint64
	hbMisses      atomic.Uint64
	notifications atomic.Uint64
	rateLimited   atomic.Uint64             // frames the rate limiter refused
	rateWaits     atomic.Uint64             // frames that waited for tokens
	rateWaitNs    atomic.Int64              // time they waited
	rare          atomic.Pointer[rareStats] // made by the first of their events (rareCounts); nil: all zero
}

// rareStats are the counters of events an ordinary client may never see:
// kept apart, made on the first, so that an idle client does not carry them.
type rareStats struct {
	rotations     atomic.Uint64 // planned rotations completed
	duplicates    atomic.Uint64 // frames seen on both connections of a rotation, delivered once
	unasked       atomic.Uint64 // confirmed channels that no request named, ignored
	testCoalesced atomic.Uint64 // test_requests that found an answer in flight
	pingFloods    atomic.Uint64 // connections ended for a ping flood
	notices       atomic.Uint64 // maintenance notices seen (Health.MaintenanceNotices)

	// Market data (sequence.go, freshness.go).
	gaps              atomic.Uint64 // Health.SequenceGaps
	resyncs           atomic.Uint64 // Health.Resyncs
	seqDropped        atomic.Uint64 // Health.SequenceDropped
	snapshotFailures  atomic.Uint64 // Health.SnapshotFailures
	staleResubscribes atomic.Uint64 // Health.StaleResubscribes
	stalls            atomic.Uint64 // Health.Stalls
}

// rareCounts returns the rare counters to count in, made on first use (by
// any goroutine).
func (s *stats) rareCounts() *rareStats {
	if r := s.rare.Load(); r != nil {
		return r
	}
	s.rare.CompareAndSwap(nil, new(rareStats))
	return s.rare.Load()
}

func newDurable(sys *actor.ActorSystem, pid *actor.PID, cfg Config) *durable {
	cfg.venueParts() // per client: the venue's limiter, secrets, connect work
	d := &durable{
		cfg:     cfg,
		sys:     sys,
		pid:     pid,
		latency: newLatencyRing(cfg.LatencyBufferSize),
		pending: newPendingTable(),
		stopped: make(chan struct{}),
	}
	d.secrets = newScrubber(cfg)
	_, d.correlator = cfg.Venue.(venue.Correlator)
	if tp, ok := cfg.Venue.(venue.TextPinger); ok && cfg.Heartbeat == HeartbeatText {
		var p venue.TextPing
		d.cfg.askVenue("TextPing", func() { p = tp.TextPing() })
		d.textPing, d.pongs = &p, make(chan struct{}, 1)
	}
	d.endpoint, d.label = endpoint(cfg.URL, d.secrets), d.secrets.String(cfg.Label)
	d.log = clientLogger(cfg.Logger, d.secrets, pid, d.endpoint, d.label)
	var deliver func(*Inbound)
	switch {
	case cfg.Handler != nil:
		h := cfg.Handler
		deliver = func(m *Inbound) { h(*m) }
	case cfg.Subscriber != nil:
		sub := cfg.Subscriber
		deliver = func(m *Inbound) { sys.Root.Send(sub, m) }
	}
	deliver = observed(cfg.Venue, deliver) // a venue.Observer sees its channels first (backfill.go)
	if rec, err := newRecorder(cfg, d.secrets, d.log); err != nil {
		d.log.Error("recording disabled", zap.Error(err))
	} else {
		d.rec = rec
	}
	d.in = newDeliveryQueue(cfg.InboundQueueSize, cfg.Overflow, deliver, d.log)
	d.in.byteLimit = cfg.inboundBytes()
	d.obs = newObserverQueue(cfg.StateObserver, d.log)
	d.tel = d.startTelemetry()
	d.intent = newIntent()
	d.intent.d = d
	d.snap.Store(&snapshot{State: StateConnecting, Heartbeat: cfg.Heartbeat})
	return d
}

func (d *durable) markStopped() {
	d.stopOnce.Do(func() {
		d.stopIntent()
		close(d.stopped)
		d.tel.stop()
		go func() {
			d.wg.Wait()
			d.setups.Wait()
			d.in.wg.Wait()
			d.obs.wait()
			if err := d.rec.close(); err != nil {
				d.log.Error("recording failed", zap.Error(err))
			}
			if ch := d.finished.Swap(&closedChan); ch != nil {
				close(*ch)
			}
		}()
	})
}

// finishedCh is closed once the client has stopped for good and every
// goroutine it started has ended. The first caller (Done, Wait, Close)
// makes it: an idle client that nobody waits for keeps none.
func (d *durable) finishedCh() <-chan struct{} {
	for {
		if ch := d.finished.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		if d.finished.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

// closedChan is finished once the client has finished.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (d *durable) isStopped() bool {
	select {
	case <-d.stopped:
		return true
	default:
		return false
	}
}

// store publishes a snapshot and wakes WaitConnected callers.
func (d *durable) store(h *snapshot) {
	d.snap.Store(h)
	if ch := d.changed.Swap(nil); ch != nil {
		close(*ch)
	}
}

// changes is closed by the next store after it returned: take it before
// reading the snapshot. The channel is made by the first caller after a
// store, not by every store (an idle client's publishes have no waiter).
func (d *durable) changes() <-chan struct{} {
	for {
		if ch := d.changed.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		if d.changed.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

// health merges the published snapshot with the live counters, and the
// channel statuses (Health.Channels).
func (d *durable) health() Health {
	h := d.healthBrief()
	h.Channels = d.intent.statuses(d.scrub)
	for i := range h.Channels {
		h.ChannelCounts.add(h.Channels[i].State)
	}
	return h
}

// healthBrief is health without Health.Channels (Degraded is in): what a
// health push carries, cheap however many channels the client wants (a
// push follows every change of a channel's status).
func (d *durable) healthBrief() Health {
	s := d.snap.Load()
	h := Health{
		State:             s.State,
		Generation:        s.Generation,
		LastError:         s.LastError,
		StopReason:        s.StopReason,
		Heartbeat:         s.Heartbeat,
		HeartbeatFailures: s.HeartbeatFailures,
		LastHeartbeat:     s.LastHeartbeat,
		RTTLast:           s.RTTLast,
		ConnectedSince:    s.ConnectedSince,
		Attempt:           s.Attempt,
		NextRetry:         s.NextRetry,
	}
	h.Reconnects = d.reconnects.Load()
	h.Restarts = d.restarts.Load()
	h.MessagesIn = d.msgsIn.Load()
	h.Notifications = d.notifications.Load()
	h.MessagesOut = d.msgsOut.Load()
	h.HeartbeatMisses = d.hbMisses.Load()
	h.InboundQueued = d.in.pending()
	h.InboundDropped = d.in.dropped.Load()
	h.HandlerPanics = d.in.panics.Load()
	h.RTTP50, h.RTTP99, h.RTTSamples = d.latency.percentiles()
	h.Pending = d.pending.count()
	h.LateResponses = d.pending.late.Load()
	h.RateLimited = d.rateLimited.Load()
	h.RateLimitWaits = d.rateWaits.Load()
	h.RateLimitWait = time.Duration(d.rateWaitNs.Load())
	h.InboundQueuedBytes = d.in.pendingBytes()
	h.ObserverDropped = d.obs.droppedCount()
	if r := d.rare.Load(); r != nil {
		h.Rotations = r.rotations.Load()
		h.DuplicatesDropped = r.duplicates.Load()
		h.ConfirmationsIgnored = r.unasked.Load()
		h.TestRequestsCoalesced = r.testCoalesced.Load()
		h.PingFloods = r.pingFloods.Load()
		h.MaintenanceNotices = r.notices.Load()
		h.SequenceGaps, h.Resyncs, h.SequenceDropped = r.gaps.Load(), r.resyncs.Load(), r.seqDropped.Load()
		h.SnapshotFailures, h.StaleResubscribes, h.Stalls = r.snapshotFailures.Load(), r.staleResubscribes.Load(), r.stalls.Load()
	}
	h.RecordsDropped = d.rec.droppedCount()
	h.RecordError = d.scrub(d.rec.failure())
	h.Degraded = h.State == StateConnected && d.intent.degraded()

	h.Endpoint, h.Label = d.endpoint, d.label
	if ns := d.lastIn.Load(); ns != 0 {
		h.LastInbound = time.Unix(0, ns)
	}
	return h
}

// clients is sys's registry of running client actors' durable states, by
// PID id: a restarted instance and NewClient handles find it there. It
// lives in the actor system (internal/sysreg), not in the package, so it
// goes with its system.
func clients(sys *actor.ActorSystem) *sysreg.Registry[*durable] {
	return sysreg.For[*durable](sys, "zenws/actors/clients")
}

// lookup finds the durable state of the local client pid (a PID of another
// node with the same id is not it).
func lookup(sys *actor.ActorSystem, pid *actor.PID) (*durable, bool) {
	d, ok := clients(sys).Load(pid.Id)
	if !ok || d.pid.Address != pid.Address {
		return nil, false
	}
	return d, true
}

// calledFromSetup reports whether the caller is a setup goroutine (a
// connect hook calling Close).
func (d *durable) calledFromSetup() bool {
	id := goroutineID()
	d.setupMu.Lock()
	defer d.setupMu.Unlock()
	return d.setupIDs != nil && slices.Contains(*d.setupIDs, id)
}

// setupRuns registers the calling goroutine as a setup goroutine until the
// returned func is called.
func (d *durable) setupRuns() func() {
	id := goroutineID()
	d.setupMu.Lock()
	if d.setupIDs == nil {
		d.setupIDs = new([]int64)
	}
	*d.setupIDs = append(*d.setupIDs, id)
	d.setupMu.Unlock()
	return func() {
		d.setupMu.Lock()
		*d.setupIDs = slices.DeleteFunc(*d.setupIDs, func(x int64) bool { return x == id })
		d.setupMu.Unlock()
	}
}
