package actors

import (
	"slices"
	"sync"
	"time"
)

// Health is a snapshot of a client, read without a round trip to its actor.
type Health struct {
	State      State
	Generation uint64 // connection generation: +1 for every successful connection
	LastError  error  // why the last connection ended or the last dial failed; nil if none
	// StopReason, once State is StateDisconnected for good: nil after a
	// clean stop (Close, a parent stopping it), else the *FatalError,
	// *GiveUpError or lost-connection error that ended the client.
	StopReason error

	Heartbeat         HeartbeatType
	HeartbeatFailures int       // unanswered heartbeats in a row on the current connection
	HeartbeatMisses   uint64    // unanswered heartbeats over the client's life
	LastHeartbeat     time.Time // last heartbeat answer (or, for Binance, last server ping)

	RTTLast    time.Duration // last heartbeat round trip
	RTTP50     time.Duration // over the last LatencyBufferSize samples (heartbeats and requests)
	RTTP99     time.Duration
	RTTSamples int

	Pending       int    // requests waiting for their response
	LateResponses uint64 // responses that came after their request gave up, dropped

	Reconnects uint64 // lost connections the client set out to heal
	Restarts   uint64 // restarts of the client actor by its supervisor
	Rotations  uint64 // planned connection rotations completed (no gap)

	DuplicatesDropped uint64 // frames seen on both connections of a rotation, delivered once

	MessagesIn     uint64 // data frames received
	Notifications  uint64 // subscription notifications among them
	MessagesOut    uint64 // data frames sent by Send/SendBinary
	InboundQueued  int    // waiting for the handler or subscriber
	InboundDropped uint64 // dropped by the overflow policy, or by a Setup.Hold (past its bound, or its connection ended)
	HandlerPanics  uint64

	RateLimited    uint64        // frames the rate limiter refused (ErrRateLimited)
	RateLimitWaits uint64        // frames that waited for the rate limiter
	RateLimitWait  time.Duration // total time they waited

	// Bounds against hostile venues and slow user code.
	InboundQueuedBytes    int64  // bytes of the messages waiting for the handler (bounded by InboundQueueBytes)
	ObserverDropped       uint64 // state changes the StateObserver queue dropped (the observer was stuck)
	ConfirmationsIgnored  uint64 // channels a venue confirmed that no request named
	TestRequestsCoalesced uint64 // Deribit test_requests that found an answer already in flight
	PingFloods            uint64 // connections ended because the server flooded pings (ErrPingFlood)

	// Market data (sequence.go, freshness.go, docs/market-data.md).
	SequenceGaps      uint64 // breaks of a sequenced channel's stream (KindGap notices for GapSequence and GapReconnect)
	Resyncs           uint64 // resyncs started (a resubscribe or a snapshot fetch)
	SequenceDropped   uint64 // updates not delivered: out of sync, already delivered, or held past the bound
	SnapshotFailures  uint64 // snapshot fetches (WithSnapshot) that failed
	StaleResubscribes uint64 // channels subscribed again because they stayed silent (WithFreshness)
	Stalls            uint64 // connections replaced because a channel stayed silent after that

	// Life cycle (lifecycle.go, rotate.go).
	MaintenanceNotices uint64 // maintenance notices (Binance serverShutdown) seen, each rotation's coalesced ones included

	// Recording (issue 12, record.go).
	RecordsDropped uint64 // frames not recorded: the recorder's queue was full, or the recording stopped
	RecordError    error  // why the recording stopped (a write error, a *PanicError from the writer); nil while it runs

	// What an operator asks first (issue 13): where, which, since when,
	// and while reconnecting how far along.

	// Endpoint is the URL the client dials, redacted (no user info, query
	// values or secret-looking path segments); never empty.
	Endpoint string
	// Label is the client's label (WithLabel), also on each of its log
	// lines; "" by default.
	Label string
	// ConnectedSince is when the current connection became connected (a
	// planned rotation keeps it: the client had no gap); zero while the
	// client is not connected.
	ConnectedSince time.Time
	// LastInbound is when the latest data frame (any message: data,
	// responses, heartbeat messages; not WebSocket pings and pongs)
	// arrived, on any connection of the client's life; zero until the
	// first.
	LastInbound time.Time
	// Attempt is the number of the connection attempt in the current
	// connecting or reconnecting episode: the one in flight, or while
	// waiting for NextRetry the one that last failed (1 is the first);
	// 0 while connected or stopped, and after a supervisor restart until
	// the restarted client's first attempt. It starts again from 1 only
	// after a connection stayed up for StableAfter (see WithRetryCount).
	Attempt int
	// NextRetry is when the next connection attempt starts, while the
	// client waits its backoff; zero otherwise (connected, an attempt in
	// flight, stopped).
	NextRetry time.Time

	// Subscriptions as intent (restore.go).
	//
	// Channels is every wanted channel with its state on the current
	// connection (and a channel whose unsubscribe the venue refused),
	// sorted by name; nil when the client wants none. Filled by
	// Client.Health, not in health pushes (HealthUpdate).
	Channels []ChannelStatus
	// ChannelCounts counts Channels by state. Like Channels, it is filled
	// by Client.Health and not in health pushes; a cluster pool
	// (balancer/cluster) fills it for the clients of other nodes, whose
	// Channels are not sent across.
	ChannelCounts ChannelCounts
	// Degraded: connected, but a wanted channel is not active (pending,
	// refused, not restored yet). Balancers pick a degraded client only
	// when no healthy one is left.
	Degraded bool
}

// snapshot is what the actor publishes: the fields of Health that come
// from its own state. Health adds the live counters (durable.healthBrief);
// a whole Health per publish would be three times the size, kept by every
// idle client.
type snapshot struct {
	State             State
	Generation        uint64
	LastError         error
	StopReason        error
	Heartbeat         HeartbeatType
	HeartbeatFailures int
	LastHeartbeat     time.Time
	RTTLast           time.Duration
	ConnectedSince    time.Time
	Attempt           int
	NextRetry         time.Time
}

// operatorView fills the fields of h that come from the actor's own state:
// ConnectedSince, Attempt and NextRetry.
func (a *clientActor) operatorView(h *snapshot) {
	switch a.state {
	case StateConnected:
		h.ConnectedSince = a.upSince
	case StateConnecting, StateReconnecting:
		h.Attempt, h.NextRetry = a.attempts, a.nextRetry
	}
}

// latencyRing keeps the last n round-trip samples of heartbeats and
// requests; callers of Request and the actor add to it concurrently. Its
// buffer is allocated on the first sample: an idle client never needs it.
type latencyRing struct {
	mu   sync.Mutex
	size int
	buf  []time.Duration
	next int
	full bool
}

func newLatencyRing(n int) *latencyRing { return &latencyRing{size: n} }

func (r *latencyRing) add(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf == nil {
		r.buf = make([]time.Duration, r.size)
	}
	r.buf[r.next] = d
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// percentiles returns p50 and p99 (nearest rank) and the sample count.
func (r *latencyRing) percentiles() (p50, p99 time.Duration, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = r.next
	if r.full {
		n = len(r.buf)
	}
	if n == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(r.buf[:n])
	slices.Sort(s)
	rank := func(p int) time.Duration { return s[(p*n+99)/100-1] }
	return rank(50), rank(99), n
}
