package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/transport"
)

// Planned rotation replaces a working connection without a gap: the client
// dials a second connection, runs the connect pipeline on it (hooks, then
// the subscription restore), publishes it, and closes the old one after a
// drain. While both are open, a frame that arrives on both (the same
// notification from the same feed) is delivered once: the first copy wins,
// which keeps each feed's order, since both connections carry it in the
// same order.
//
// A rotation starts when the connection reaches 90-95% of MaxConnectionAge
// (a random point, so that a pool does not rotate all at once), when a
// Binance server announces maintenance (serverShutdown, with the Binance
// dialect), or on Client.Rotate. If the new connection fails, the old one
// stays and the rotation is tried again after a backoff; if the old one is
// lost first, the client reconnects as usual.

// WithMaxConnectionAge makes the client replace each connection, without a
// gap, before it is d old (Binance cuts connections at 24 h). Zero (the
// default) turns planned rotation off; otherwise d must be at least
// 1 s (a bare 24 is 24 ns, a likely slip for hours).
func WithMaxConnectionAge(d time.Duration) Option {
	return func(c *Config) { c.MaxConnectionAge = d }
}

// mergeLimit bounds the frames of the new connection held back while the
// old one still delivers.
const mergeLimit = 4096

// rotation is a replacement connection being set up (phaseRotating).
type rotation struct {
	cancel  context.CancelFunc // ends its dial
	dialed  atomic.Pointer[transport.Conn]
	next    *session // once dialed: the replacement session, in its connect pipeline
	waiters []chan error
	started time.Time
}

// merge joins the old connection's stream and the new one's without a
// hole, a duplicate or a reordering. While the old connection still
// delivers, the new one's frames are held back. A frame that comes on both
// (the same bytes: the same feed) is delivered from the old one: an old
// frame marks its held copy as delivered, or, when it came first, is
// remembered so that its copy is dropped on arrival. When the old
// connection is gone, the held frames not marked are delivered in their
// order and the new connection goes live. Both connections carry each feed
// in order, so the result is in order too.
type merge struct {
	newGen  uint64
	seed    maphash.Seed
	held    []heldFrame
	byHash  map[uint64][]int // unmarked held frames by hash, oldest first
	oldSeen map[uint64]int   // old frames delivered that no held frame matched yet
	oldRing []uint64         // their order, to bound oldSeen
}

type heldFrame struct {
	in     *Inbound
	marked bool
}

func newMerge(gen uint64) *merge {
	return &merge{newGen: gen, seed: maphash.MakeSeed(), byHash: map[uint64][]int{}, oldSeen: map[uint64]int{}}
}

type rotateNow struct {
	gen   uint64 // the connection to replace
	reply chan error
}

type rotateDialed struct {
	rot   *rotation
	conn  *transport.Conn
	pings *serverPings
	err   error
}

type retire struct {
	conn  *transport.Conn
	gen   uint64
	since time.Time
}

type retired struct{ gen uint64 }

// ErrRotationFailed wraps why a planned rotation could not set up its new
// connection (the old one stays in use).
var ErrRotationFailed = errors.New("zenws: rotation failed")

// Rotate replaces the client's connection now, without a gap, as planned
// rotation does, and returns once the new connection is in use (or why
// not: ErrNotConnected while not connected, an error wrapping
// ErrRotationFailed when the new connection failed and the old one stays,
// ErrTimeout when ctx's deadline passed first).
func (c *Client) Rotate(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	if d.isStopped() {
		return ErrClosed
	}
	lc := d.conn.Load()
	if lc == nil {
		return ErrNotConnected
	}
	reply := make(chan error, 1)
	c.sys.Root.Send(c.pid, &rotateNow{gen: lc.gen, reply: reply})
	select {
	case err := <-reply:
		return err
	case <-d.stopped:
		select {
		case err := <-reply:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctxEnded("Rotate", ctx)
	}
}

// scheduleRotation arms the age timer of the current connection.
func (a *clientActor) scheduleRotation() {
	a.stopRotationTimer()
	age := a.cfg.MaxConnectionAge
	if age <= 0 {
		return
	}
	at := time.Duration(float64(age) * (0.90 + 0.05*rand.Float64()))
	a.rotateAfter(at)
}

func (a *clientActor) rotateAfter(delay time.Duration) {
	a.stopRotationTimer()
	sys, self, msg := a.sys, a.self, &rotateNow{gen: a.cur.gen}
	a.rotTimer = time.AfterFunc(delay, func() { sys.Root.Send(self, msg) })
}

func (a *clientActor) stopRotationTimer() {
	if a.rotTimer != nil {
		a.rotTimer.Stop()
		a.rotTimer = nil
	}
}

// startRotation dials the replacement connection for connection m.gen.
func (a *clientActor) startRotation(m *rotateNow) {
	switch {
	case a.live() == nil || a.cur.gen != m.gen:
		if m.reply != nil {
			m.reply <- ErrNotConnected
		}
		return
	case a.phase == phaseRotating: // already under way: wait for it
		if m.reply != nil {
			a.rot.waiters = append(a.rot.waiters, m.reply)
		}
		return
	}
	d := a.d
	ctx, cancel := context.WithCancel(a.life)
	r := &rotation{cancel: cancel, started: time.Now()}
	a.lastRotation = r.started
	a.rot = r
	a.enter(phaseRotating)
	if m.reply != nil {
		r.waiters = append(r.waiters, m.reply)
	}
	d.log.Info("rotating the connection", zap.Uint64("generation", a.gen))
	sys, self := a.sys, a.self
	a.dialInBackground(ctx, &r.dialed, func(conn *transport.Conn, pings *serverPings, err error) {
		sys.Root.Send(self, &rotateDialed{rot: r, conn: conn, pings: pings, err: err})
	})
}

func (a *clientActor) rotationDialed(m *rotateDialed) {
	r := m.rot
	if m.conn != nil && !r.dialed.CompareAndSwap(m.conn, nil) {
		return // the rotation was aborted and closed it
	}
	if r != a.rot || a.phase != phaseRotating {
		if m.conn != nil {
			_ = m.conn.CloseNow()
		}
		return
	}
	if m.err != nil {
		a.rotationFailed(fmt.Errorf("dial: %w", m.err))
		return
	}
	a.endMerge()
	// A rotation carries the wanted set over whatever RestoreSubscriptions
	// says: it is the client's own replacement, and must not cost a gap.
	r.next = a.openSession(m.conn, m.pings, true)
	a.merge = newMerge(r.next.gen) // before its first frame: the reader's frames queue behind this message
	a.setup(r.next, true)
}

// rotationSetUp finishes a rotation whose new connection ran its connect
// pipeline: bring its subscriptions up to date with changes made
// meanwhile, then switch over; or keep the old connection.
func (a *clientActor) rotationSetUp(m *setupDone) {
	r, d := a.rot, a.d
	if m.hookErr != nil {
		a.rotationFailed(m.hookErr)
		return
	}
	// The new connection must carry every channel the current one has:
	// otherwise keep the current one. Changes made meanwhile were applied
	// by the restore's rounds; the worker applies later ones once it is
	// live.
	if missing := d.intent.missingFrom(r.next.subs); len(missing) > 0 {
		err := fmt.Errorf("restoring subscriptions: %d channels not confirmed (%v): %w", len(missing), missing, m.restoreErr)
		if m.restoreErr == nil {
			err = fmt.Errorf("restoring subscriptions: %d channels not confirmed: %v", len(missing), missing)
		}
		a.rotationFailed(err)
		return
	}
	if err := r.next.conn.Err(); err != nil {
		// It ended while the restore ran (its connLost is on the way): keep
		// the current connection rather than switch to a dead one.
		a.rotationFailed(fmt.Errorf("the new connection ended before the switch: %w", err))
		return
	}
	old, next := a.cur, r.next
	a.rot = nil
	r.cancel()
	a.stopHeartbeat()
	a.cur, a.gen = next, next.gen
	a.enter(phaseLive)
	d.conn.Store(next)
	d.intent.promote(next.gen)
	a.releaseHolds(next.gen) // a hook that never released (backfill.go)
	a.startHeartbeat()
	d.rareCounts().rotations.Add(1)
	a.rotFailures = 0
	d.log.Info("rotated the connection", zap.Uint64("from", old.gen), zap.Uint64("to", next.gen))
	a.publish()
	a.scheduleRotation()
	for _, w := range r.waiters {
		w <- nil
	}
	// The old connection drains: responses to requests sent on it can
	// still arrive, and its frames are merged with the new one's.
	old.since = time.Now()
	a.retiring = append(a.retiring, old)
	a.retireWhenDrained(&retire{conn: old.conn, gen: old.gen, since: old.since})
}

// A replaced connection stays at least minDrain, so that what the venue
// sent on it before the switch is read and merged (without it, a frame was
// seen lost in a rotation), and at most maxDrain (RequestTimeout, if
// shorter) for the responses to requests sent on it.
const (
	minDrain = 100 * time.Millisecond
	maxDrain = 30 * time.Second
)

// retireWhenDrained sends m (the connection retires) once no request waits
// on m.conn, or the drain bound has passed, or the connection ended:
// woken by the pending table, not by polling it.
func (a *clientActor) retireWhenDrained(m *retire) {
	d, sys, self := a.d, a.sys, a.self
	drained := d.pending.whenDrained(m.conn)
	wait := min(a.cfg.RequestTimeout, maxDrain) - time.Since(m.since)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTimer(max(wait, 0))
		defer t.Stop()
		linger := time.NewTimer(minDrain)
		defer linger.Stop()
		select { // the least stay first (or the end of the connection)
		case <-linger.C:
		case <-m.conn.Done():
		case <-d.stopped:
			return
		}
		select {
		case <-drained:
		case <-t.C:
		case <-m.conn.Done():
		case <-d.stopped:
			return
		}
		if !d.isStopped() {
			sys.Root.Send(self, m)
		}
	}()
}

// rotationFailed gives up the replacement; the current session stays live.
func (a *clientActor) rotationFailed(err error) {
	err = a.d.scrub(err) // it reaches Rotate's callers and pending requests
	r := a.rot
	a.rot = nil
	a.enter(phaseLive)
	r.cancel()
	if c := r.dialed.Swap(nil); c != nil {
		_ = c.CloseNow()
	}
	if s := r.next; s != nil {
		a.closeSession(s)
		a.d.pending.failConn(s.conn, fmt.Errorf("%w: %w", ErrDisconnected, err))
		if a.merge != nil && a.merge.newGen == s.gen {
			a.merge = nil // its held frames came from the connection given up; the old one has them
		}
	}
	a.rotFailures++
	if a.noticeGen == a.gen {
		a.noticeGen = 0 // the connection stays: a later notice on it may rotate again (after the gap)
	}
	a.d.log.Warn("rotation failed; keeping the current connection", zap.Error(err))
	wrapped := fmt.Errorf("%w: %w", ErrRotationFailed, err)
	for _, w := range r.waiters {
		w <- wrapped
	}
	if a.cfg.MaxConnectionAge > 0 {
		a.rotateAfter(backoff(a.rotFailures, a.cfg.RetryDelay, a.cfg.MaxBackoff))
	}
}

// abortRotation drops a rotation under way (the current connection ended
// or the client stops); the caller changes the phase.
func (a *clientActor) abortRotation(err error) {
	r := a.rot
	if r == nil {
		return
	}
	err = a.d.scrub(err) // it reaches Rotate's callers
	a.rot = nil
	r.cancel()
	if c := r.dialed.Swap(nil); c != nil {
		_ = c.CloseNow()
	}
	if r.next != nil {
		a.closeSession(r.next)
	}
	for _, w := range r.waiters {
		w <- fmt.Errorf("%w: %w", ErrRotationFailed, err)
	}
}

// retireConn closes a replaced connection once no request waits for a
// response on it (or after the longest drain).
func (a *clientActor) retireConn(m *retire) {
	if _, r := a.sessionOf(m.gen); r != roleRetiring {
		return // gone already (lost, or the client reconnected or stops)
	}
	d, sys, self := a.d, a.sys, a.self
	d.pending.failConn(m.conn, fmt.Errorf("%w: the connection was rotated out", ErrDisconnected))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		_ = m.conn.Close(websocket.StatusNormalClosure, "rotated")
		if !d.isStopped() {
			sys.Root.Send(self, &retired{gen: m.gen})
		}
	}()
}

// connRetired: a replaced connection has closed; its frames are all in,
// so the merge ends.
func (a *clientActor) connRetired(gen uint64) {
	if i := a.retiringIndex(gen); i >= 0 {
		a.retiring = slices.Delete(a.retiring, i, i+1)
	}
	if len(a.retiring) == 0 && a.rot == nil {
		a.endMerge()
	}
}

// retiringLost: draining session s failed; its requests fail now.
func (a *clientActor) retiringLost(s *session, err error) {
	a.d.pending.failConn(s.conn, a.d.scrub(fmt.Errorf("%w: %w", ErrDisconnected, err)))
	_ = s.conn.CloseNow()
	a.connRetired(s.gen)
}

func (a *clientActor) retiringIndex(gen uint64) int {
	return slices.IndexFunc(a.retiring, func(s *session) bool { return s.gen == gen })
}

// closeRetiring closes replaced connections still draining (stop, restart,
// or the current connection was lost).
func (a *clientActor) closeRetiring() {
	for _, s := range a.retiring {
		_ = s.conn.CloseNow()
	}
	a.retiring = nil
	a.endMerge()
}

// mergeIn routes a data frame while two connections overlap; it reports
// whether the frame was taken care of (held or dropped).
func (a *clientActor) mergeIn(in *Inbound) bool {
	m := a.merge
	if m == nil {
		if in.Generation < a.mergeFloor {
			a.d.rareCounts().duplicates.Add(1) // a straggler of a connection merged away
			return true
		}
		return false
	}
	h := maphash.Bytes(m.seed, in.Data)
	if in.Generation == m.newGen {
		if n := m.oldSeen[h]; n > 0 { // delivered from the old connection already
			if n == 1 {
				delete(m.oldSeen, h)
			} else {
				m.oldSeen[h] = n - 1
			}
			a.d.rareCounts().duplicates.Add(1)
			return true
		}
		if len(m.held) >= mergeLimit {
			a.d.log.Warn("rotation: too many frames held while the old connection drains; going live on the new one")
			a.endMerge()
			return false
		}
		m.byHash[h] = append(m.byHash[h], len(m.held))
		m.held = append(m.held, heldFrame{in: in})
		return true
	}
	if in.Generation > m.newGen {
		return false
	}
	if idx := m.byHash[h]; len(idx) > 0 {
		m.held[idx[0]].marked = true
		if len(idx) == 1 {
			delete(m.byHash, h)
		} else {
			m.byHash[h] = idx[1:]
		}
		a.d.rareCounts().duplicates.Add(1)
		return false
	}
	m.oldSeen[h]++
	m.oldRing = append(m.oldRing, h)
	if len(m.oldRing) > mergeLimit { // forget the oldest
		old := m.oldRing[0]
		m.oldRing = m.oldRing[1:]
		if n := m.oldSeen[old]; n <= 1 {
			delete(m.oldSeen, old)
		} else {
			m.oldSeen[old] = n - 1
		}
	}
	return false
}

// endMerge delivers the held frames not delivered from the old connection
// and lets the new one go live; frames of older connections that arrive
// later are dropped.
func (a *clientActor) endMerge() {
	m := a.merge
	if m == nil {
		return
	}
	a.merge = nil
	a.mergeFloor = m.newGen
	for _, f := range m.held {
		if !f.marked {
			a.emit(f.in)
		}
	}
}

// noticeGap is the shortest time between a rotation and the next one a
// maintenance notice starts; it doubles (up to MaxBackoff) for every
// notice that arrives on a connection younger than StableAfter, so that a
// venue that announces maintenance on every connection, or floods the
// notice, gets a rotation ladder, not a storm.
const noticeGap = time.Second

// maintenanceNotice acts on a maintenance notice that arrived on
// connection gen: at most one rotation per connection, no sooner than the
// notice gap after the previous rotation; other notices are coalesced
// (counted in Health.MaintenanceNotices, logged once per connection).
func (a *clientActor) maintenanceNotice(gen uint64) {
	a.d.rareCounts().notices.Add(1)
	switch {
	case a.live() == nil || a.cur.gen != gen:
		return // a replacement or draining connection: a rotation is under way or done
	case a.noticeGen == gen:
		return // this connection's rotation is started or scheduled already
	}
	a.noticeGen = gen
	if time.Since(a.cur.hb.since) < a.cfg.StableAfter {
		a.noticeStreak++
	} else {
		a.noticeStreak = 1
	}
	if a.phase == phaseRotating {
		a.d.log.Info("the server announced maintenance during a rotation: coalesced")
		return
	}
	gap := backoffCap(a.noticeStreak, noticeGap, max(a.cfg.MaxBackoff, noticeGap))
	wait := time.Until(a.lastRotation.Add(gap))
	if wait <= 0 {
		a.d.log.Info("the server announced maintenance: rotating the connection")
		a.startRotation(&rotateNow{gen: gen})
		return
	}
	a.d.log.Info("the server announced maintenance soon after a rotation: rotating later",
		zap.Duration("in", wait), zap.Int("streak", a.noticeStreak))
	a.rotateAfter(wait)
}
