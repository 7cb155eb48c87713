package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
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
	id          uint64    // Deribit: id of the periodic public/test
	replies     map[uint64]struct{}
	failures    int // unanswered in a row
	last        time.Time
	lastRTT     time.Duration
	since       time.Time // connection start (Binance: silence is measured from here at first)
}

// maxTrackedReplies bounds the ids of test_request answers awaiting their
// reply; past it the oldest are forgotten (their replies then reach the
// handler as unmatched responses rather than growing the map).
const maxTrackedReplies = 64

func (a *clientActor) startHeartbeat() {
	a.hb = heartbeat{since: time.Now(), replies: map[uint64]struct{}{}}
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
		if a.hb.outstanding && a.miss(ctx, "public/test") {
			return
		}
		a.sendTest()
	case HeartbeatBinance:
		last := a.hb.since
		if n := a.pings.Load(); n != 0 {
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
	if a.hb.outstanding && a.cfg.Heartbeat == HeartbeatDeribit {
		// A late reply is still heartbeat traffic: consume it when it comes.
		a.trackReply(a.hb.id)
	}
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
	a.d.latency.add(rtt)
	a.publish()
}

// sendPing pings in a goroutine (a ping waits for its pong), bounded by one
// interval.
func (a *clientActor) sendPing() {
	a.hb.outstanding = true
	a.hb.sentAt = time.Now()
	conn, gen, d, sys, self, interval := a.conn, a.gen, a.d, a.sys, a.self, a.cfg.HeartbeatInterval
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		// A little under one interval, so the result is in before the
		// next tick and each tick sends a ping.
		ctx, cancel := context.WithTimeout(context.Background(), interval*9/10)
		defer cancel()
		rtt, err := conn.Ping(ctx)
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
	case errors.Is(m.err, transport.ErrClosed):
		// The reader reports the connection's end.
		a.hb.outstanding = false
	default:
		a.miss(ctx, "ping")
	}
}

// sendTest sends Deribit's periodic public/test with an id the client tracks.
func (a *clientActor) sendTest() {
	id := a.d.ids.Add(1)
	a.hb.outstanding, a.hb.sentAt, a.hb.id = true, time.Now(), id
	a.writeAsync(publicTest(id))
}

// answerTestRequest replies to Deribit's test_request at once.
func (a *clientActor) answerTestRequest() {
	id := a.d.ids.Add(1)
	a.trackReply(id)
	a.writeAsync(publicTest(id))
}

func (a *clientActor) trackReply(id uint64) {
	if len(a.hb.replies) >= maxTrackedReplies {
		clear(a.hb.replies)
	}
	a.hb.replies[id] = struct{}{}
}

func publicTest(id uint64) []byte {
	return []byte(`{"jsonrpc":"2.0","id":` + strconv.FormatUint(id, 10) + `,"method":"public/test","params":{}}`)
}

// writeAsync writes a heartbeat frame off the actor's goroutine: a write can
// take up to the write timeout when the peer stalls. A failed write fails the
// connection, which the reader then reports.
func (a *clientActor) writeAsync(data []byte) {
	conn, d := a.conn, a.d
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := conn.Write(context.Background(), websocket.MessageText, data); err != nil {
			d.log.Debug("heartbeat write failed", zap.Error(err))
		}
	}()
}

// consumeHeartbeat reports whether an inbound JSON message is heartbeat
// traffic (and handles it). Heartbeat traffic never reaches the handler.
func (a *clientActor) consumeHeartbeat(gen uint64, env *jsonrpc.Envelope) bool {
	if a.cfg.Heartbeat != HeartbeatDeribit {
		return false
	}
	if bytes.Equal(env.Method, methodHeartbeat) {
		typ, _ := jsonrpc.String(jsonrpc.Field(env.Params, "type"))
		if typ == "test_request" && gen == a.gen && a.conn != nil {
			a.answerTestRequest()
		}
		return true
	}
	id, ok := jsonrpc.Uint(env.ID)
	if !ok || gen != a.gen {
		return false
	}
	if a.hb.outstanding && id == a.hb.id {
		a.answered(time.Since(a.hb.sentAt))
		return true
	}
	if _, ok := a.hb.replies[id]; ok {
		delete(a.hb.replies, id)
		a.hb.failures = 0
		a.hb.last = time.Now()
		return true
	}
	return false
}
