package actors

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zenws/zenws/transport"
)

// The client actor is a state machine over sessions. A session is one
// connection generation; the actor's phase says what it is doing with
// them:
//
//	           dialed               set up
//	dialing ─────────▶ setup ─────────────────▶ live ◀──────┐
//	   ▲ ▲               │ attempt failed         │  switch  │ failed
//	   │ └───────────────┘                        ▼  over    │
//	   │                                       rotating ─────┘
//	   └──────────── lost / Reconnect ──── live, rotating
//
//	any phase ── Stopping / Restarting ──▶ stopping (final)
//
// enter is the one place the phase changes, and it refuses a change the
// diagram does not have. The public State follows from the phase: dialing
// and setup are StateConnecting on the first connection and
// StateReconnecting after one was lost; live and rotating are
// StateConnected; stopping ends in StateDisconnected when the actor stops.

// phase is where the client actor is in its state machine.
type phase uint8

const (
	// phaseDialing: no session; a dial is in flight (dialing) or the next
	// one waits its backoff (retryTimer).
	phaseDialing phase = iota
	// phaseSetup: the current session runs its connect pipeline (hooks,
	// then the subscription restore) and is not published yet.
	phaseSetup
	// phaseLive: the current session is published and carries traffic.
	phaseLive
	// phaseRotating: the current session is live and its replacement
	// (rot) is dialing or running its connect pipeline.
	phaseRotating
	// phaseStopping: the instance is torn down (a stop or a restart);
	// nothing starts again.
	phaseStopping
)

func (p phase) String() string {
	switch p {
	case phaseDialing:
		return "dialing"
	case phaseSetup:
		return "setup"
	case phaseLive:
		return "live"
	case phaseRotating:
		return "rotating"
	case phaseStopping:
		return "stopping"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// canEnter reports whether the diagram above has the change from → to.
func canEnter(from, to phase) bool {
	if to == phaseStopping {
		return from != phaseStopping
	}
	switch from {
	case phaseDialing:
		return to == phaseSetup || to == phaseDialing // a Reconnect while dialing starts over
	case phaseSetup:
		return to == phaseLive || to == phaseDialing
	case phaseLive:
		return to == phaseRotating || to == phaseDialing
	case phaseRotating:
		return to == phaseLive || to == phaseDialing
	}
	return false
}

// enter moves the actor to phase to, and the public State with it. A change
// the state machine does not have is a bug in the actor: it panics (the
// supervisor restarts the client, Health names the *PanicError).
func (a *clientActor) enter(to phase) {
	from := a.phase
	if !canEnter(from, to) {
		panic(fmt.Sprintf("zenws: client actor: no transition from %v to %v", from, to))
	}
	a.phase = to
	switch {
	case to == phaseDialing && (from == phaseLive || from == phaseRotating):
		a.setState(StateReconnecting)
	case to == phaseLive && from == phaseSetup:
		a.setState(StateConnected)
	}
}

// stopping reports whether the instance is torn down.
func (a *clientActor) stopping() bool { return a.phase == phaseStopping }

// session is one connection generation: the connection, its server-ping
// state, its subscriptions (restore.go) and, while it is the current one,
// its heartbeat. The actor creates it when a dial succeeds and is the only
// one to close it. The handle reaches the live session through
// durable.conn for the send path, and reads only conn and gen, which never
// change.
type session struct {
	gen   uint64
	conn  *transport.Conn
	pings *serverPings
	subs  *subSession
	hb    heartbeat // the prober (heartbeat.go); used while it is the current session
	since time.Time // when it was replaced (a retiring session draining)

	answering atomic.Bool // a test_request answer is in flight on it (heartbeat.go)
}

// openSession makes the session of a connection just dialed: a fresh
// generation, its reader, a fresh per-connection budget where the venue
// counts per connection, and its subscriptions registered (carried over
// from the wanted set when restore is true).
func (a *clientActor) openSession(conn *transport.Conn, pings *serverPings, restore bool) *session {
	d := a.d
	s := &session{gen: d.generation.Add(1), conn: conn, pings: pings}
	a.startReader(s)
	d.newConnectionLimit()
	s.subs = d.intent.open(conn, s.gen, restore)
	return s
}

// closeSession ends s at once: its subscriptions and its connection. The
// requests waiting on it are the caller's to fail (with the reason).
func (a *clientActor) closeSession(s *session) {
	a.d.intent.close(s.gen)
	_ = s.conn.CloseNow()
}

// role is what a session is to the actor.
type role uint8

const (
	roleNone     role = iota // no open session has the generation
	roleCurrent              // a.cur
	roleNext                 // a rotation's replacement
	roleRetiring             // replaced, draining
)

// sessionOf finds the open session of generation gen and its role.
func (a *clientActor) sessionOf(gen uint64) (*session, role) {
	switch {
	case a.cur != nil && a.cur.gen == gen:
		return a.cur, roleCurrent
	case a.rot != nil && a.rot.next != nil && a.rot.next.gen == gen:
		return a.rot.next, roleNext
	}
	for _, s := range a.retiring {
		if s.gen == gen {
			return s, roleRetiring
		}
	}
	return nil, roleNone
}

// current returns the current session if gen is its generation.
func (a *clientActor) current(gen uint64) *session {
	if a.cur != nil && a.cur.gen == gen {
		return a.cur
	}
	return nil
}

// live returns the current session if it carries traffic (live or
// rotating), nil otherwise.
func (a *clientActor) live() *session {
	if a.phase == phaseLive || a.phase == phaseRotating {
		return a.cur
	}
	return nil
}
