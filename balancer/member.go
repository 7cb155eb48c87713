package balancer

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
)

// Endpoint is a connection the balancer sends through: a local client
// (*actors.Client), or one held by another node (package balancer/cluster).
type Endpoint interface {
	PID() *actor.PID
	Send(ctx context.Context, msg []byte) error
	Request(ctx context.Context, msg []byte) (json.RawMessage, error)
	Call(ctx context.Context, method string, params any) (json.RawMessage, error)
}

var _ Endpoint = (*actors.Client)(nil)

// Watcher is an Endpoint that delivers its client's health itself (package
// balancer/cluster: a client on another node, which the plain Go messages
// of a health registration and actor.Watch cannot reach). For such an endpoint the
// router calls WatchHealth instead of watching the client: the endpoint
// then sends the router an *actors.HealthUpdate for the client as its
// health changes, and an *actor.Terminated when the client or its node is
// gone. UnwatchHealth ends it.
type Watcher interface {
	WatchHealth(router *actor.PID)
	UnwatchHealth(router *actor.PID)
}

// member is one client in the balancer's table. The router actor creates
// it and replaces its health; callers update its load counters
// concurrently.
type member struct {
	pid    *actor.PID
	key    string // pidKey(pid): the table's order
	ep     Endpoint
	remote bool

	health      atomic.Pointer[actors.Health] // last pushed snapshot
	outstanding atomic.Int64                  // balanced operations in flight
	picks       atomic.Uint64
	failures    atomic.Uint64

	mu   sync.Mutex // guards the decaying values below; per member, never global
	cost float64    // peak EWMA of round trips, in nanoseconds
	seen int64      // unix nanos of its last update
	errs float64    // recent errors, decaying
	errT int64
}

// Time constants of the decaying values: a round-trip sample weighs half
// after about 7 s (Finagle's and Linkerd's 10 s time constant), an error
// after about 14 s.
const (
	costTau = 10 * time.Second
	errTau  = 20 * time.Second
)

func newMember(pid *actor.PID, ep Endpoint, remote bool) *member {
	return &member{pid: pid, key: pidKey(pid), ep: ep, remote: remote}
}

// observe feeds a round trip into the peak EWMA: a sample above the current
// cost replaces it at once (a slow-down is believed immediately), a lower
// one is averaged in with a weight that grows with the time since the last
// update.
func (m *member) observe(rtt time.Duration, now int64) {
	m.mu.Lock()
	m.decayLocked(float64(rtt), now)
	m.mu.Unlock()
}

// observeFailure feeds the time an operation took to fail after it was
// sent (a timeout, a lost connection) into the peak EWMA, only where it
// raises the cost: a client that never answers would otherwise keep the
// cost of its last answer (or none, decayed towards zero) and win every
// draw against clients that answer in microseconds; a failure never makes
// a client look faster.
func (m *member) observeFailure(elapsed time.Duration, now int64) {
	m.mu.Lock()
	m.decayLocked(0, now)
	if s := float64(elapsed); s > m.cost {
		m.cost = s
	}
	m.mu.Unlock()
}

func (m *member) decayLocked(sample float64, now int64) {
	if sample > m.cost {
		m.cost = sample
	} else {
		dt := float64(max(now-m.seen, 0))
		w := math.Exp(-dt / float64(costTau))
		m.cost = m.cost*w + sample*(1-w)
	}
	m.seen = now
}

// costAt is the peak EWMA as of now: without samples it decays towards
// zero, so a member that was slow is tried again after a while (Finagle's
// probing by decay).
func (m *member) costAt(now int64) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.decayLocked(0, now)
	return m.cost
}

func (m *member) recordError(now int64) {
	m.failures.Add(1)
	m.mu.Lock()
	m.errs = m.errsLocked(now) + 1
	m.errT = now
	m.mu.Unlock()
}

func (m *member) errsLocked(now int64) float64 {
	if m.errs == 0 {
		return 0
	}
	return m.errs * math.Exp(-float64(max(now-m.errT, 0))/float64(errTau))
}

func (m *member) recentErrors(now int64) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errsLocked(now)
}

// unmeasuredPenalty is the load of a member that has work in flight but no
// round trip measured yet (Finagle's penalty): without it a newly joined
// client, at cost 0, would win every draw and take a burst of traffic
// before its first answer says how fast it is.
const unmeasuredPenalty = 1e12

// load is what the peak-EWMA strategy minimises: the expected wait behind
// the work already in flight, cost * (outstanding + 1), raised by recent
// errors. An idle member that was never measured costs nothing (it gets
// tried); one never measured with work in flight costs the penalty.
func (m *member) load(now int64) float64 {
	m.mu.Lock()
	m.decayLocked(0, now)
	cost, errs := m.cost, m.errsLocked(now)
	m.mu.Unlock()
	out := float64(m.outstanding.Load())
	if cost == 0 && out > 0 {
		return unmeasuredPenalty + out
	}
	return (cost + 1) * (out + 1) * (1 + errs)
}

// score is the original ZenWebsocket health score (0-100, higher is
// better): 100 - min(pending*10, 40) - min(p99_ms/25, 30) -
// min(errors*15, 20). Like the original it reads each client's current
// figures (a local client's live Health, a remote one's last push);
// unlike the original, errors decay smoothly (time constant 20 s) instead
// of dropping to zero 60 s after the last one.
func (m *member) score(now int64) float64 {
	h := m.health.Load()
	if c, ok := m.ep.(*actors.Client); ok {
		live := c.Health()
		h = &live
	}
	var pending int64
	var p99 time.Duration
	if h != nil {
		pending = int64(h.Pending) // the client's own count includes the balancer's calls
		p99 = h.RTTP99
	}
	s := 100.0
	s -= min(float64(pending)*10, 40)
	s -= min(float64(p99)/float64(time.Millisecond)/25, 30)
	s -= min(m.recentErrors(now)*15, 20)
	return s
}

// eligible: connected, and its heartbeat is not failing.
func eligible(h *actors.Health) bool {
	return h != nil && h.State == actors.StateConnected && h.HeartbeatFailures == 0
}
