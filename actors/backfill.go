package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/venue"
)

// What a venue's connect work needs to reconcile state after a reconnect
// (Deribit's open orders and trades: package actors/deribit): whether
// something may have been missed (Reconnected, Rotating), what the handler
// has been given so far (Delivered, and a venue.Observer that follows the
// stream), and a way to put what it fetched in the stream (Backfill).

// Reconnected reports whether the client had a connection before this one
// that it lost (Health.Reconnects or Health.Restarts above zero): what the
// venue sent while there was none may have been missed. False on the
// client's first connection (venue.Session).
func (s *Setup) Reconnected() bool {
	return s.d.reconnects.Load() > 0 || s.d.restarts.Load() > 0
}

// Rotating reports whether another connection of the client is live while
// this one is set up: a planned rotation (make-before-break), in which the
// old connection goes on delivering and nothing is missed (venue.Session).
func (s *Setup) Rotating() bool {
	cur := s.d.conn.Load()
	return cur != nil && cur.gen != s.gen
}

// Delivered waits until every message the client accepted for delivery
// before the call has been handed to the handler or subscriber (and seen
// by the venue's venue.Observer), or ctx ends (ctx's error), or the client
// stops (ErrClosed). It queues a marker behind those messages and waits for
// the delivery goroutine to reach it (venue.Session).
func (s *Setup) Delivered(ctx context.Context) error {
	reached := make(chan struct{})
	s.d.in.call(func() { close(reached) })
	select {
	case <-reached:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("zenws: waiting for deliveries: %w", ctx.Err())
	case <-s.d.stopped:
		return ErrClosed
	}
}

// Backfill delivers data, a notification of channel that the venue's
// connect work fetched for what changed while the client had no
// connection, in the client's stream: an Inbound of KindNotification with
// Backfill set and this connection's Generation, queued after every message
// already accepted. From a connect hook it comes before this connection's
// own notifications (the restore has not subscribed yet); from an
// AfterRestore stage, before those of the channels a Hold keeps (its
// Release queues them after), while other channels flow already. The
// message counts against the inbound queue's bounds like any other
// (venue.Session).
func (s *Setup) Backfill(channel string, data []byte) {
	if len(channel) > maxChannelName {
		channel = channel[:maxChannelName]
	}
	s.d.in.push(&Inbound{Client: s.d.pid, Kind: KindNotification, Data: data, Generation: s.gen,
		Received: time.Now(), Channel: channel, Backfill: true})
}

// observed wraps deliver so that the venue's venue.Observer sees the
// notifications of its channels first; deliver itself when the venue has
// none.
func observed(v venue.Venue, deliver func(*Inbound)) func(*Inbound) {
	o, ok := v.(venue.Observer)
	if !ok || deliver == nil {
		return deliver
	}
	var prefix string
	if guard("venue ObservePrefix", func() error { prefix = o.ObservePrefix(); return nil }) != nil {
		return deliver
	}
	return func(m *Inbound) {
		if m.Kind == KindNotification && strings.HasPrefix(m.Channel, prefix) {
			_ = guard("venue Observe", func() error { o.Observe(m.Channel, m.Data); return nil })
		}
		deliver(m)
	}
}

// Holding a connection's live notifications while a venue reconciles.
//
// A venue that fetches what changed while the client had no connection
// must fetch after its private channels are live again (else what happens
// between the fetch and the subscribe is in neither), and deliver the
// fetch before the live notifications (else the consumer sees the new
// before the old). So a connect hook holds the live notifications of those
// channels (Setup.Hold), the restore subscribes, a second stage
// (Setup.AfterRestore) fetches and delivers the backfill, then releases
// what was held, in order, less what the backfill already delivered
// (Hold.Release's filter).

// Bounds of a hold when Setup.Hold is given none.
const (
	DefaultHoldMessages = 10000
	DefaultHoldBytes    = 16 << 20
)

// ErrHoldOverflow is Hold.Release's error when notifications came past the
// hold's bound: they were dropped (Released.Overflow), the rest delivered.
var ErrHoldOverflow = errors.New("zenws: notifications held past the hold's bound were dropped")

// errHoldReleased is a second Release's error.
var errHoldReleased = errors.New("zenws: the hold was released already")

// Hold is a hold on the notifications of one connection's channels that
// begin with a prefix (Setup.Hold): they are kept, in order, instead of
// being delivered, until Release. It ends by itself, the held
// notifications dropped, when the connection ends or the client stops;
// a hold still open when the connection goes live (the hooks and stages
// all returned, the client reports connected) is released then, unfiltered.
type Hold struct {
	d      *durable
	gen    uint64
	conn   <-chan struct{} // closed when the hold's connection ends
	prefix string
	maxN   int
	maxB   int64

	// Guarded by d.holds.mu.
	held     []*Inbound
	bytes    int64
	overflow int
	ended    bool // released, or its connection ended
	dead     bool // its connection ended first: what still comes of it is dropped
	// After a Release with a filter, the filter stays on the channels'
	// live notifications until tailUntil: a notification of something the
	// backfill delivered can still be on its way when the hold is released
	// (the venue recorded the trade, the fetch returned it, its live
	// notification had not reached the client yet).
	tail      func(channel string, data []byte) []byte
	tailUntil time.Time
}

// holdTail is how long a released hold's filter stays on the live
// notifications of its channels.
const holdTail = 5 * time.Second

// Released says what a Release did.
type Released struct {
	Held     int // notifications held
	Filtered int // of them, dropped by the filter (already delivered by the backfill)
	Overflow int // notifications that came past the bound, dropped
}

// holdSet is a client's holds: the open ones, and a few whose connection
// ended (dead), which drop what still comes of it (frames the reader had
// sent the actor before the end); n is their count, read without the lock
// by every delivery (zero: nothing to look at).
type holdSet struct {
	n    atomic.Int32
	mu   sync.Mutex
	list []*Hold
}

// maxDeadHolds bounds the dead holds kept: a connection's last frames
// reach the actor soon after it ends, long before eight more connections.
const maxDeadHolds = 8

// releaseHold asks the actor to release a hold (on its goroutine: the
// held notifications then go on through the merge and the sequence guard,
// in order, before any later frame).
type releaseHold struct {
	h      *Hold
	filter func(channel string, data []byte) []byte
	first  func(Released)
	reply  chan releaseResult // room for one
}

type releaseResult struct {
	r   Released
	err error
}

// Hold holds, from now until Release, the notifications of this
// connection whose channel begins with prefix ("" for all): they are not
// delivered but kept in order, at most maxMessages of them and maxBytes of
// data (<= 0: DefaultHoldMessages, DefaultHoldBytes); past the bound they
// are dropped (Release reports ErrHoldOverflow). The hold ends by itself
// when the connection ends or the client stops: what it held, and what
// still comes of that connection on its channels, is dropped (never given
// to the handler, it is what a later backfill fetches again). What a hold
// drops counts in Health.InboundDropped. A hold still open when the connection goes live is released
// then, unfiltered. Other connections' notifications are not held
// (venue.Session).
func (s *Setup) Hold(prefix string, maxMessages int, maxBytes int64) *Hold {
	if maxMessages <= 0 {
		maxMessages = DefaultHoldMessages
	}
	if maxBytes <= 0 {
		maxBytes = DefaultHoldBytes
	}
	h := &Hold{d: s.d, gen: s.gen, conn: s.conn.Done(), prefix: prefix, maxN: maxMessages, maxB: maxBytes}
	hs := &s.d.holds
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.pruneLocked()
	hs.list = append(hs.list, h)
	hs.n.Store(int32(len(hs.list)))
	return h
}

// pruneLocked ends the holds whose connection has ended (their held
// notifications dropped) and keeps the newest maxDeadHolds of them.
func (hs *holdSet) pruneLocked() {
	dead := 0
	now := time.Now()
	for i := len(hs.list) - 1; i >= 0; i-- {
		h := hs.list[i]
		if h.tail != nil && (now.After(h.tailUntil) || closed(h.conn)) {
			hs.list = slices.Delete(hs.list, i, i+1) // its tail is over
			continue
		}
		if !h.dead && closed(h.conn) {
			h.dieLocked()
		}
		if h.dead {
			if dead++; dead > maxDeadHolds {
				hs.list = slices.Delete(hs.list, i, i+1)
			}
		}
	}
	hs.n.Store(int32(len(hs.list)))
}

// dieLocked ends a hold whose connection ended: what it held is dropped.
func (h *Hold) dieLocked() {
	if n := len(h.held); n > 0 && !h.ended {
		h.d.in.dropped.Add(uint64(n))
		h.d.log.Debug("connection ended with notifications held: dropped", zap.Uint64("generation", h.gen), zap.Int("held", n))
	}
	h.ended, h.dead, h.held = true, true, nil
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// end ends the hold and returns what it held and how many it dropped past
// its bound; false when it had ended already (released, or its connection
// ended: then it stays, dead, to drop what still comes of it).
func (h *Hold) end() ([]*Inbound, int, bool) {
	hs := &h.d.holds
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if !h.ended && closed(h.conn) {
		h.dieLocked()
	}
	if h.ended {
		return nil, 0, false
	}
	h.ended = true
	held := h.held
	h.held = nil
	hs.list = slices.DeleteFunc(hs.list, func(o *Hold) bool { return o == h })
	hs.n.Store(int32(len(hs.list)))
	return held, h.overflow, true
}

// Release ends the hold and delivers what it held, in order, ahead of any
// notification that comes after: each through filter first (when not nil),
// which returns the data to deliver (data itself, or a rewrite that leaves
// out what the backfill already delivered) or nil to drop it. first (when
// not nil) runs before the held notifications are queued and after the
// filter, with what the release does: what it queues (Setup.Backfill, the
// end of a backfill) comes before them. Both run on the client actor's
// goroutine: they must be quick and must not call the client. The filter
// then stays on the live notifications of the hold's channels on that
// connection for 5 s more: one of something the backfill delivered may
// still be on its way (the venue had recorded it when the fetch was
// answered). The error
// is ErrHoldOverflow when notifications past the bound were dropped (the
// others are delivered), ErrNotConnected when the connection ended first
// (nothing delivered), an error when it was released already, ctx's
// error, or ErrClosed.
func (h *Hold) Release(ctx context.Context, filter func(channel string, data []byte) []byte, first func(Released)) (Released, error) {
	m := &releaseHold{h: h, filter: filter, first: first, reply: make(chan releaseResult, 1)}
	h.d.sys.Root.Send(h.d.pid, m)
	select {
	case res := <-m.reply:
		return res.r, res.err
	case <-ctx.Done():
		return Released{}, fmt.Errorf("zenws: releasing held notifications: %w", ctx.Err())
	case <-h.d.stopped:
		return Released{}, ErrClosed
	}
}

// held takes a notification of a hold's into it (on the actor's
// goroutine), or drops it when that hold's connection has ended; false
// when no hold is on it.
func (d *durable) held(in *Inbound) bool {
	if d.holds.n.Load() == 0 || in.Kind != KindNotification {
		return false
	}
	hs := &d.holds
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for i, h := range hs.list {
		if h.gen != in.Generation || !strings.HasPrefix(in.Channel, h.prefix) {
			continue
		}
		if h.tail != nil { // released: its filter on the live notifications, for a while
			if time.Now().After(h.tailUntil) {
				hs.list = slices.Delete(hs.list, i, i+1)
				hs.n.Store(int32(len(hs.list)))
				return false
			}
			data := in.Data
			if guard("hold filter", func() error { data = h.tail(in.Channel, in.Data); return nil }) != nil {
				data = in.Data // a filter that panics drops nothing
			}
			if data == nil {
				d.in.dropped.Add(1) // the backfill delivered it
				return true
			}
			in.Data = data
			return false
		}
		if !h.dead && closed(h.conn) {
			h.dieLocked()
		}
		switch size := int64(len(in.Data)); {
		case h.dead:
			d.in.dropped.Add(1)
		case len(h.held) < h.maxN && h.bytes+size <= h.maxB:
			h.held, h.bytes = append(h.held, in), h.bytes+size
		default:
			if h.overflow == 0 {
				d.log.Warn("held notifications over the hold's bound: dropping the rest", zap.Uint64("generation", h.gen),
					zap.String("prefix", h.prefix), zap.Int("held", len(h.held)), zap.Int64("bytes", h.bytes))
			}
			h.overflow++
			d.in.dropped.Add(1)
		}
		return true
	}
	return false
}

// releaseHeld releases m's hold (on the actor's goroutine) and answers.
func (a *clientActor) releaseHeld(m *releaseHold) {
	held, overflow, ok := m.h.end()
	if !ok {
		a.d.holds.mu.Lock()
		dead := m.h.dead
		a.d.holds.mu.Unlock()
		err := errHoldReleased
		if dead {
			err = fmt.Errorf("zenws: releasing held notifications: %w", ErrNotConnected)
		}
		m.reply <- releaseResult{err: err}
		return
	}
	r := a.release(held, overflow, m.filter, m.first)
	if m.filter != nil && !closed(m.h.conn) {
		hs := &a.d.holds
		hs.mu.Lock()
		m.h.tail, m.h.tailUntil = m.filter, time.Now().Add(holdTail)
		hs.list = append(hs.list, m.h)
		hs.n.Store(int32(len(hs.list)))
		hs.mu.Unlock()
	}
	var err error
	if overflow > 0 {
		err = fmt.Errorf("%w: %d dropped after %d held", ErrHoldOverflow, overflow, r.Held)
	}
	m.reply <- releaseResult{r: r, err: err}
}

// release delivers held notifications, through filter, after first.
func (a *clientActor) release(held []*Inbound, overflow int, filter func(string, []byte) []byte, first func(Released)) Released {
	r := Released{Held: len(held), Overflow: overflow}
	keep := held[:0]
	for _, in := range held {
		if filter != nil {
			data := in.Data
			if guard("hold filter", func() error { data = filter(in.Channel, in.Data); return nil }) != nil {
				data = in.Data // a filter that panics drops nothing
			}
			if data == nil {
				r.Filtered++
				continue
			}
			in.Data = data
		}
		keep = append(keep, in)
	}
	if first != nil {
		_ = guard("hold release", func() error { first(r); return nil })
	}
	for _, in := range keep {
		a.pass(in)
	}
	return r
}

// releaseHolds releases, unfiltered, the holds still open on connection
// gen when it goes live: a hook that never released does not keep the
// channels silent.
func (a *clientActor) releaseHolds(gen uint64) {
	if a.d.holds.n.Load() == 0 {
		return
	}
	a.d.holds.mu.Lock()
	var open []*Hold
	for _, h := range a.d.holds.list {
		if h.gen == gen && !h.ended {
			open = append(open, h)
		}
	}
	a.d.holds.mu.Unlock()
	for _, h := range open {
		if held, overflow, ok := h.end(); ok {
			a.d.log.Warn("connection live with notifications still held: released", zap.Uint64("generation", gen),
				zap.String("prefix", h.prefix), zap.Int("held", len(held)), zap.Int("dropped", overflow))
			a.release(held, overflow, nil, nil)
		}
	}
}
