package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/transport"
)

// heartbeat is the per-connection heartbeat state of a client instance.
type heartbeat struct {
	timer       *time.Timer
	outstanding bool      // a ping or periodic public/test awaits its answer
	sentAt      time.Time // when it was sent
	failures    int       // unanswered in a row
	last        time.Time
	lastRTT     time.Duration
	since       time.Time // connection start (Binance: silence is measured from here at first)
}

// startHeartbeat starts the current session's prober.
func (a *clientActor) startHeartbeat() {
	s := a.cur
	s.hb = heartbeat{since: time.Now()}
	if a.cfg.Heartbeat == HeartbeatDisabled {
		return
	}
	a.armHeartbeat(s)
}

func (a *clientActor) armHeartbeat(s *session) {
	sys, self, gen := a.sys, a.self, s.gen
	s.hb.timer = time.AfterFunc(a.cfg.HeartbeatInterval, func() { sys.Root.Send(self, &hbTick{gen: gen}) })
}

// stopHeartbeat stops the current session's prober (if any).
func (a *clientActor) stopHeartbeat() {
	if s := a.cur; s != nil {
		if s.hb.timer != nil {
			s.hb.timer.Stop()
			s.hb.timer = nil
		}
		s.hb.outstanding = false
	}
}

func (a *clientActor) heartbeatTick(ctx actor.Context, m *hbTick) {
	s := a.current(m.gen)
	if s == nil || s.hb.timer == nil {
		return
	}
	switch a.cfg.Heartbeat {
	case HeartbeatPingPong:
		// A ping still in flight ends by its own timeout (one interval) and
		// is counted then.
		if !s.hb.outstanding {
			a.d.chargeControl()
			a.probe(s, s.conn.Ping)
		}
	case HeartbeatDeribit:
		// Like a ping: one public/test in flight, ended by its own timeout.
		if !s.hb.outstanding {
			a.sendTest(s)
		}
	case HeartbeatText:
		// Like a ping: the venue's text ping, answered by its text pong.
		if !s.hb.outstanding {
			a.sendTextPing(s)
		}
	case HeartbeatBinance:
		// The server pings; the client only watches the silence. One
		// silence longer than the window ends the connection (there is
		// nothing to count: no probe of ours went unanswered).
		last := s.hb.since
		if n := s.pings.last.Load(); n != 0 {
			last = time.Unix(0, n)
			s.hb.last = last
		}
		if silence := time.Since(last); silence > a.cfg.ServerPingWindow {
			a.d.hbMisses.Add(1)
			a.d.log.Info("heartbeat unanswered", zap.String("heartbeat", "server ping"), zap.Duration("silent_for", silence.Round(time.Millisecond)), zap.Duration("window", a.cfg.ServerPingWindow))
			a.currentFailed(ctx, fmt.Errorf("%w: no server ping for %v (window %v)", ErrHeartbeatTimeout, silence.Round(time.Millisecond), a.cfg.ServerPingWindow))
			return
		}
		a.publish()
	}
	a.armHeartbeat(s)
}

// miss counts an unanswered probe of session s and reports whether it ended
// the connection.
func (a *clientActor) miss(ctx actor.Context, s *session, what string) bool {
	s.hb.outstanding = false
	s.hb.failures++
	a.d.hbMisses.Add(1)
	a.d.log.Info("heartbeat unanswered", zap.String("heartbeat", what), zap.Int("in_a_row", s.hb.failures), zap.Int("allowed", a.cfg.HeartbeatMisses))
	if s.hb.failures >= a.cfg.HeartbeatMisses {
		a.currentFailed(ctx, fmt.Errorf("%w: %d unanswered %s in a row", ErrHeartbeatTimeout, s.hb.failures, what))
		return true
	}
	a.publish()
	return false
}

func (a *clientActor) answered(s *session, rtt time.Duration) {
	s.hb.outstanding = false
	s.hb.failures = 0
	s.hb.last = time.Now()
	s.hb.lastRTT = rtt
	if a.cfg.Heartbeat == HeartbeatPingPong {
		a.d.latency.add(rtt) // public/test round trips are recorded as requests
	}
	a.publish()
}

// probe runs one heartbeat round trip of session s off the actor's
// goroutine (it waits for its answer), bounded by a little under one
// interval so that its result is in before the next tick; the result comes
// back as pingResult.
func (a *clientActor) probe(s *session, roundTrip func(ctx context.Context) (time.Duration, error)) {
	s.hb.outstanding = true
	s.hb.sentAt = time.Now()
	gen, d, sys, self, interval := s.gen, a.d, a.sys, a.self, a.cfg.HeartbeatInterval
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), interval*9/10)
		defer cancel()
		rtt, err := roundTrip(ctx)
		if !d.isStopped() {
			sys.Root.Send(self, &pingResult{gen: gen, rtt: rtt, err: err})
		}
	}()
}

func (a *clientActor) pingDone(ctx actor.Context, m *pingResult) {
	s := a.current(m.gen)
	if s == nil || !s.hb.outstanding {
		return
	}
	switch {
	case m.err == nil:
		a.answered(s, m.rtt)
	case errors.Is(m.err, transport.ErrClosed), errors.Is(m.err, ErrDisconnected), errors.Is(m.err, ErrNotConnected):
		// The connection ended: the reader reports that.
		s.hb.outstanding = false
	case a.cfg.Heartbeat == HeartbeatDeribit:
		a.miss(ctx, s, "public/test")
	default:
		a.miss(ctx, s, "ping")
	}
}

// sendTextPing sends the venue's text ping (venue.TextPinger); the reader
// signals its pong (textPong), which gives the round trip.
func (a *clientActor) sendTextPing(s *session) {
	conn, d, gen, p := s.conn, a.d, s.gen, a.d.textPing
	a.probe(s, func(ctx context.Context) (time.Duration, error) {
		d.pingGen.Store(gen) // only a pong on this connection answers
		select {             // a pong left over from an earlier ping does not answer this one
		case <-d.pongs:
		default:
		}
		start := time.Now()
		if err := d.writeOn(ctx, conn, gen, websocket.MessageText, p.Ping); err != nil {
			return 0, err
		}
		select {
		case <-d.pongs:
			return time.Since(start), nil
		case <-ctx.Done():
			return 0, fmt.Errorf("no %q within %v: %w", p.Pong, time.Since(start).Round(time.Millisecond), ErrTimeout)
		case <-conn.Done():
			return 0, ErrDisconnected
		}
	})
}

// textPong reports whether a text frame is the venue's text pong; it
// answers the ping in flight when it came on that ping's connection (a
// draining connection's pong is consumed, and answers nothing). Called on
// the reader goroutine.
func (d *durable) textPong(gen uint64, data []byte) bool {
	if d.textPing == nil || !bytes.Equal(data, d.textPing.Pong) {
		return false
	}
	if gen != d.pingGen.Load() {
		return true
	}
	select {
	case d.pongs <- struct{}{}:
	default:
	}
	return true
}

// sendTest sends Deribit's periodic public/test through the pending table,
// so its id can never collide with a user's request and its reply is
// consumed on the reader goroutine.
func (a *clientActor) sendTest(s *session) {
	conn, gen, d := s.conn, s.gen, a.d
	a.probe(s, func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		_, err := d.call(ctx, via{conn: conn, pace: paceCharge, gen: gen}, d.probeRequest)
		return time.Since(start), err
	})
}

// answerTestRequest replies to Deribit's test_request at once; the reply to
// the reply is consumed (or, late, counted) like any request's. At most one
// answer is in flight per connection, from its write until its response
// (or its deadline, one heartbeat interval): a test_request that arrives
// meanwhile is already answered by it (Deribit needs a public/test after a
// test_request, not one per test_request), so it is coalesced and counted
// (Health.TestRequestsCoalesced). A venue that floods test_requests thus
// costs one goroutine and one pending request per connection, not one per
// notification.
func (a *clientActor) answerTestRequest(s *session) {
	d, interval, conn, gen := a.d, a.cfg.HeartbeatInterval, s.conn, s.gen
	if !s.answering.CompareAndSwap(false, true) {
		d.rareCounts().testCoalesced.Add(1)
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer s.answering.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		defer cancel()
		if _, err := d.call(ctx, via{conn: conn, pace: paceCharge, gen: gen}, d.probeRequest); err != nil {
			d.log.Debug("answer to test_request", zap.Error(err))
		}
	}()
}

// probeRequest builds the venue's probe (venue.Prober) with id.
func (d *durable) probeRequest(id uint64) ([]byte, error) {
	var b []byte
	err := guard("venue probe", func() error { b = d.cfg.prober().ProbeRequest(id); return nil })
	return b, err
}

// consumeHeartbeat reports whether an inbound JSON notification is the
// venue's heartbeat traffic (venue.Prober; Deribit's heartbeat and
// test_request by default), and answers one that asks for it at once.
// Heartbeat traffic never reaches the handler; replies to the client's
// probes are consumed on the reader goroutine like every request's.
func (a *clientActor) consumeHeartbeat(gen uint64, env *jsonrpc.Envelope, data []byte) bool {
	if a.cfg.Heartbeat != HeartbeatDeribit || env.Method == nil || env.ID != nil {
		return false
	}
	var heartbeat, answer bool
	_ = guard("venue heartbeat", func() error { heartbeat, answer = a.cfg.prober().HeartbeatFrame(data); return nil })
	if answer {
		if s, _ := a.sessionOf(gen); s != nil {
			a.answerTestRequest(s)
		}
	}
	return heartbeat
}
