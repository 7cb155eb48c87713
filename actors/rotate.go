package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/ratelimit"
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
// default) turns planned rotation off.
func WithMaxConnectionAge(d time.Duration) Option {
	return func(c *Config) { c.MaxConnectionAge = d }
}

// dedupWindow is how many recent frames are remembered while two
// connections overlap.
const dedupWindow = 4096

// rotation is a replacement connection being set up.
type rotation struct {
	conn    *transport.Conn
	gen     uint64
	pings   *atomic.Int64
	waiters []chan error
}

// dedup remembers the hashes of recent frames, bounded.
type dedup struct {
	seed maphash.Seed
	seen map[uint64]struct{}
	ring []uint64
	next int
}

func newDedup() *dedup {
	return &dedup{seed: maphash.MakeSeed(), seen: make(map[uint64]struct{}, 256)}
}

// first reports whether data was not seen in the window, and remembers it.
func (s *dedup) first(data []byte) bool {
	h := maphash.Bytes(s.seed, data)
	if _, dup := s.seen[h]; dup {
		return false
	}
	if len(s.ring) < dedupWindow {
		s.ring = append(s.ring, h)
	} else {
		delete(s.seen, s.ring[s.next])
		s.ring[s.next] = h
		s.next = (s.next + 1) % dedupWindow
	}
	s.seen[h] = struct{}{}
	return true
}

type rotateNow struct {
	gen   uint64 // the connection to replace
	reply chan error
}

type rotateDialed struct {
	owner *clientActor
	gen   uint64
	conn  *transport.Conn
	pings *atomic.Int64
	err   error
}

type retire struct {
	conn  *transport.Conn
	gen   uint64
	since time.Time
}

type retired struct{ gen uint64 }

// retiring is a replaced connection while it drains.
type retiring struct {
	conn  *transport.Conn
	gen   uint64
	since time.Time
}

// ErrRotationFailed wraps why a planned rotation could not set up its new
// connection (the old one stays in use).
var ErrRotationFailed = errors.New("zenws: rotation failed")

// Rotate replaces the client's connection now, without a gap, as planned
// rotation does, and returns once the new connection is in use (or why
// not: ErrNotConnected while not connected, an error wrapping
// ErrRotationFailed when the new connection failed and the old one stays).
func (c *Client) Rotate(ctx context.Context) error {
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
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("zenws: Rotate: %w", context.Cause(ctx))
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
	sys, self, msg := a.sys, a.self, &rotateNow{gen: a.gen}
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
	if m.gen != a.gen || a.conn == nil || a.stopping || a.state != StateConnected {
		if m.reply != nil {
			m.reply <- ErrNotConnected
		}
		return
	}
	if a.rot != nil { // already under way: wait for it
		if m.reply != nil {
			a.rot.waiters = append(a.rot.waiters, m.reply)
		}
		return
	}
	a.rot = &rotation{}
	if m.reply != nil {
		a.rot.waiters = append(a.rot.waiters, m.reply)
	}
	a.d.log.Info("rotating the connection", zap.Uint64("generation", a.gen))
	d, life, sys, self, owner, gen := a.d, a.life, a.sys, a.self, a, a.gen
	pings := new(atomic.Int64)
	opts := a.cfg.transportOptions(func([]byte) {
		pings.Store(time.Now().UnixNano())
		d.chargeControl()
	})
	url, dialLimit := a.cfg.URL, a.cfg.DialLimiter
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if dialLimit != nil {
			if err := dialLimit.Wait(life, ratelimit.Frame{}); err != nil {
				return
			}
		}
		conn, err := transport.Dial(life, url, opts)
		if conn != nil {
			d.dialedNext.Store(conn)
		}
		if life.Err() != nil {
			if conn != nil && d.dialedNext.CompareAndSwap(conn, nil) {
				_ = conn.CloseNow()
			}
			return
		}
		sys.Root.Send(self, &rotateDialed{owner: owner, gen: gen, conn: conn, pings: pings, err: err})
	}()
}

func (a *clientActor) rotationDialed(m *rotateDialed) {
	if m.conn != nil && !a.d.dialedNext.CompareAndSwap(m.conn, nil) {
		return // a stop got there first and closed it
	}
	if m.owner != a || a.stopping || a.rot == nil || m.gen != a.gen || a.conn == nil {
		if m.conn != nil {
			_ = m.conn.CloseNow()
		}
		return
	}
	if m.err != nil {
		a.rotationFailed(fmt.Errorf("dial: %w", m.err))
		return
	}
	r, d := a.rot, a.d
	r.conn, r.pings, r.gen = m.conn, m.pings, d.generation.Add(1)
	if a.dedup == nil {
		a.dedup = newDedup()
	}
	a.startReader(r.conn, r.gen)
	var chs []string
	if a.cfg.RestoreSubscriptions {
		chs = d.subs.list()
	}
	a.setup(r.conn, r.gen, chs)
}

// rotationSetUp finishes a rotation whose new connection ran its connect
// pipeline: switch over, or keep the old connection.
func (a *clientActor) rotationSetUp(m *setupDone) {
	switch {
	case m.hookErr != nil:
		a.rotationFailed(m.hookErr)
		return
	case m.restoreErr != nil:
		a.rotationFailed(fmt.Errorf("restoring subscriptions: %w", m.restoreErr))
		return
	}
	r, d := a.rot, a.d
	old, oldGen := a.conn, a.gen
	a.rot = nil
	a.conn, a.gen, a.pings = r.conn, r.gen, r.pings
	d.conn.Store(&liveConn{conn: r.conn, gen: r.gen})
	a.stopHeartbeat()
	a.startHeartbeat()
	d.rotations.Add(1)
	d.log.Info("rotated the connection", zap.Uint64("from", oldGen), zap.Uint64("to", r.gen))
	a.publish()
	a.scheduleRotation()
	for _, w := range r.waiters {
		w <- nil
	}
	// The old connection drains: responses to requests sent on it can
	// still arrive.
	r0 := retiring{conn: old, gen: oldGen, since: time.Now()}
	a.retiring = append(a.retiring, r0)
	a.retireLater(&retire{conn: old, gen: oldGen, since: r0.since})
	a.rotFailures = 0
}

// drainCheck is how often a replaced connection is checked for requests
// still waiting for their responses on it; maxDrain bounds the wait.
const (
	drainCheck = 100 * time.Millisecond
	maxDrain   = 30 * time.Second
)

func (a *clientActor) retireLater(m *retire) {
	sys, self := a.sys, a.self
	time.AfterFunc(drainCheck, func() { sys.Root.Send(self, m) })
}

func (a *clientActor) rotationFailed(err error) {
	r := a.rot
	a.rot = nil
	if r.conn != nil {
		_ = r.conn.CloseNow()
		a.d.pending.failConn(r.conn, fmt.Errorf("%w: %w", ErrDisconnected, err))
	}
	a.rotFailures++
	a.d.log.Warn("rotation failed; keeping the current connection", zap.Error(err))
	wrapped := fmt.Errorf("%w: %w", ErrRotationFailed, err)
	for _, w := range r.waiters {
		w <- wrapped
	}
	if len(a.retiring) == 0 {
		a.dedup = nil
	}
	if a.cfg.MaxConnectionAge > 0 && !a.stopping && a.conn != nil {
		a.rotateAfter(backoff(a.rotFailures, a.cfg.RetryDelay, a.cfg.MaxBackoff))
	}
}

// abortRotation drops a rotation under way (the current connection ended
// or the client stops).
func (a *clientActor) abortRotation(err error) {
	if a.rot == nil {
		return
	}
	r := a.rot
	a.rot = nil
	if r.conn != nil {
		_ = r.conn.CloseNow()
	}
	for _, w := range r.waiters {
		w <- fmt.Errorf("%w: %w", ErrRotationFailed, err)
	}
}

// retireConn closes a replaced connection once no request waits for a
// response on it (or after the longest drain).
func (a *clientActor) retireConn(m *retire) {
	if a.connOf(m.gen) != m.conn {
		return // closed already (the client reconnected or stops)
	}
	d, sys, self := a.d, a.sys, a.self
	if d.pending.countConn(m.conn) > 0 && time.Since(m.since) < min(a.cfg.RequestTimeout, maxDrain) {
		a.retireLater(m)
		return
	}
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

// connRetired: a replaced connection has closed; once none overlaps the
// current one, frames are no longer checked for duplicates.
func (a *clientActor) connRetired(m *retired) {
	for i, r := range a.retiring {
		if r.gen == m.gen {
			a.retiring = append(a.retiring[:i], a.retiring[i+1:]...)
			break
		}
	}
	if len(a.retiring) == 0 && a.rot == nil {
		a.dedup = nil
	}
}

// closeRetiring closes replaced connections still draining (stop, restart,
// or the current connection was lost).
func (a *clientActor) closeRetiring() {
	for _, r := range a.retiring {
		_ = r.conn.CloseNow()
	}
	a.retiring = nil
	a.dedup = nil
}

// connOf returns the open connection of generation gen: the current one, a
// rotation's replacement, or one draining; nil if none.
func (a *clientActor) connOf(gen uint64) *transport.Conn {
	switch {
	case a.conn != nil && gen == a.gen:
		return a.conn
	case a.rot != nil && a.rot.conn != nil && gen == a.rot.gen:
		return a.rot.conn
	}
	for _, r := range a.retiring {
		if r.gen == gen {
			return r.conn
		}
	}
	return nil
}

// serverShutdown reports whether a frame is Binance's maintenance notice,
// {"event":{"e":"serverShutdown",...}}.
func serverShutdown(data []byte) bool {
	ev := jsonrpc.Field(data, "event")
	if ev == nil {
		return false
	}
	e, _ := jsonrpc.String(jsonrpc.Field(ev, "e"))
	return e == "serverShutdown"
}
