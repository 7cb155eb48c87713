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

func (a *clientActor) startHeartbeat() {
	a.hb = heartbeat{since: time.Now()}
	if a.cfg.Heartbeat == HeartbeatDisabled {
		return
	}
	a.armHeartbeat()
}

func (a *clientActor) armHeartbeat() {
	sys, self, gen := a.sys, a.self, a.gen
	a.hb.timer = time.AfterFunc(a.cfg.HeartbeatInterval, func() { sys.Root.Send(self, &hbTick{gen: gen}) })
}

func (a *clientActor) stopHeartbeat() {
	if a.hb.timer != nil {
		a.hb.timer.Stop()
		a.hb.timer = nil
	}
	a.hb.outstanding = false
}

func (a *clientActor) heartbeatTick(ctx actor.Context, m *hbTick) {
	if m.gen != a.gen || a.conn == nil || a.hb.timer == nil {
		return
	}
	switch a.cfg.Heartbeat {
	case HeartbeatPingPong:
		// A ping still in flight ends by its own timeout (one interval) and
		// is counted then.
		if !a.hb.outstanding {
			a.sendPing()
		}
	case HeartbeatDeribit:
		// Like a ping: one public/test in flight, ended by its own timeout.
		if !a.hb.outstanding {
			a.sendTest()
		}
	case HeartbeatText:
		// Like a ping: the venue's text ping, answered by its text pong.
		if !a.hb.outstanding {
			a.sendTextPing()
		}
	case HeartbeatBinance:
		last := a.hb.since
		if n := a.pings.last.Load(); n != 0 {
			last = time.Unix(0, n)
			a.hb.last = last
		}
		if silence := time.Since(last); silence > a.cfg.ServerPingWindow {
			a.hb.failures = a.cfg.HeartbeatMisses - 1
			if a.miss(ctx, fmt.Sprintf("server ping (silent for %v, window %v)", silence.Round(time.Millisecond), a.cfg.ServerPingWindow)) {
				return
			}
		}
		a.publish()
	}
	a.armHeartbeat()
}

// miss counts an unanswered heartbeat and reports whether it ended the
// connection.
func (a *clientActor) miss(ctx actor.Context, what string) bool {
	a.hb.outstanding = false
	a.hb.failures++
	a.d.hbMisses.Add(1)
	a.d.log.Info("heartbeat unanswered", zap.String("heartbeat", what), zap.Int("in_a_row", a.hb.failures), zap.Int("allowed", a.cfg.HeartbeatMisses))
	if a.hb.failures >= a.cfg.HeartbeatMisses {
		a.lose(ctx, fmt.Errorf("%w: %d unanswered %s in a row", ErrHeartbeatTimeout, a.hb.failures, what))
		return true
	}
	a.publish()
	return false
}

func (a *clientActor) answered(rtt time.Duration) {
	a.hb.outstanding = false
	a.hb.failures = 0
	a.hb.last = time.Now()
	a.hb.lastRTT = rtt
	if a.cfg.Heartbeat == HeartbeatPingPong {
		a.d.latency.add(rtt) // public/test round trips are recorded as requests
	}
	a.publish()
}

// sendPing pings with a payload unique to the connection; the pong gives
// the round trip.
func (a *clientActor) sendPing() {
	conn := a.conn
	a.d.chargeControl()
	a.probe(conn.Ping)
}

// probe runs one heartbeat round trip off the actor's goroutine (it waits
// for its answer), bounded by a little under one interval so that its
// result is in before the next tick; the result comes back as pingResult.
func (a *clientActor) probe(roundTrip func(ctx context.Context) (time.Duration, error)) {
	a.hb.outstanding = true
	a.hb.sentAt = time.Now()
	gen, d, sys, self, interval := a.gen, a.d, a.sys, a.self, a.cfg.HeartbeatInterval
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
	if m.gen != a.gen || a.conn == nil || !a.hb.outstanding {
		return
	}
	switch {
	case m.err == nil:
		a.answered(m.rtt)
	case errors.Is(m.err, transport.ErrClosed), errors.Is(m.err, ErrDisconnected), errors.Is(m.err, ErrNotConnected):
		// The connection ended: the reader reports that.
		a.hb.outstanding = false
	case a.cfg.Heartbeat == HeartbeatDeribit:
		a.miss(ctx, "public/test")
	default:
		a.miss(ctx, "ping")
	}
}

// sendTextPing sends the venue's text ping (venue.TextPinger); the reader
// signals its pong (textPong), which gives the round trip.
func (a *clientActor) sendTextPing() {
	conn, d, gen, p := a.conn, a.d, a.gen, a.d.textPing
	a.probe(func(ctx context.Context) (time.Duration, error) {
		select { // a pong left over from an earlier ping does not answer this one
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
// answers the ping in flight. Called on the reader goroutine.
func (d *durable) textPong(gen uint64, data []byte) bool {
	if d.textPing == nil || !bytes.Equal(data, d.textPing.Pong) {
		return false
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
func (a *clientActor) sendTest() {
	conn, gen, d := a.conn, a.gen, a.d
	a.probe(func(ctx context.Context) (time.Duration, error) {
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
func (a *clientActor) answerTestRequest(conn *transport.Conn, gen uint64) {
	d, interval := a.d, a.cfg.HeartbeatInterval
	if _, busy := d.testAnswers.LoadOrStore(conn, struct{}{}); busy {
		d.testCoalesced.Add(1)
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.testAnswers.Delete(conn)
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
		if conn := a.connOf(gen); conn != nil {
			a.answerTestRequest(conn, gen)
		}
	}
	return heartbeat
}
