package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/transport"
)

// ErrRateLimited: the rate limiter refused a frame (at once under
// RateReject, or because its tokens would come after the caller's deadline
// under RateWait). Nothing was sent, so trying again later or on another
// connection is safe. It is ratelimit.ErrRateLimited.
var ErrRateLimited = ratelimit.ErrRateLimited

// RatePolicy says what a client does with a frame its rate limiter cannot
// admit at once.
type RatePolicy int

const (
	// RateWait (the default) waits for the tokens within the caller's
	// deadline (for requests, the earlier of ctx's and RequestTimeout);
	// when the tokens would come later than that it returns ErrRateLimited
	// at once, without waiting for nothing.
	RateWait RatePolicy = iota
	// RateReject returns ErrRateLimited at once.
	RateReject
)

// String names the policy.
func (p RatePolicy) String() string {
	switch p {
	case RateWait:
		return "wait"
	case RateReject:
		return "reject"
	}
	return fmt.Sprintf("RatePolicy(%d)", int(p))
}

// WithRateLimiter paces every frame the client sends through l, with
// policy p for the user's own sends, requests and subscriptions. Traffic
// the client makes itself is treated as the venue needs it: subscription
// restores after a reconnect and connect hooks always wait; replies a venue
// requires at once (Deribit's test_request answer and the client's
// public/test heartbeat, WebSocket pings and pongs) are never delayed but
// are counted (ratelimit.Limiter.Charge). Share l between clients that share
// the venue's limit (ratelimit.Deribit for one sub-account); see package
// ratelimit for the presets.
//
// It overrides the venue's limiter (WithVenue); WithRateLimiter(nil, p)
// turns rate limiting off even for a venue that has one. Default: the
// venue's limiter (see venue.RateLimited), else none, with RateWait.
func WithRateLimiter(l *ratelimit.Limiter, p RatePolicy) Option {
	return func(c *Config) { c.RateLimiter, c.RatePolicy, c.rateLimiterSet = l, p, true }
}

// pace says how the rate limiter treats a frame.
type pace uint8

const (
	paceUser   pace = iota // the client's RatePolicy
	paceWait               // the client's own traffic that must go out: restores, connect hooks
	paceCharge             // replies a venue requires at once: counted, never delayed
)

// via says where and how a frame goes: on conn (nil: the published
// connection), paced as pace says. gen is conn's generation, recorded with
// the frame (for the published connection it comes with it).
type via struct {
	conn *transport.Conn
	pace pace
	gen  uint64
}

// admit takes the frame's tokens from the rate limiter as pace says.
func (d *durable) admit(ctx context.Context, p pace, data []byte) error {
	l := d.limiter()
	if l == nil {
		return nil
	}
	f := ratelimit.Frame{Data: data}
	switch {
	case p == paceCharge:
		if err := l.Charge(f); err != nil {
			d.classifierFailed(l, err) // a required reply goes out anyway
		}
		return nil
	case p == paceUser && d.cfg.RatePolicy == RateReject:
		err := l.Try(f)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrRateLimited):
			d.rateLimited.Add(1)
			return fmt.Errorf("%w: %s limit reached (policy reject)", ErrRateLimited, l.Name())
		}
		d.classifierFailed(l, err)
		return err
	}
	waited, err := l.WaitFor(ctx, f)
	if errors.Is(err, ratelimit.ErrClassifierPanicked) {
		d.classifierFailed(l, err)
	}
	if waited > 0 {
		d.rateWaits.Add(1)
		d.rateWaitNs.Add(int64(waited))
	}
	if errors.Is(err, ErrRateLimited) {
		d.rateLimited.Add(1)
	}
	return err
}

// chargeControl counts a ping or pong the client sends against the rate
// limiter, without delay.
func (d *durable) chargeControl() {
	if l := d.limiter(); l != nil {
		if err := l.Charge(ratelimit.Frame{Control: true}); err != nil {
			d.classifierFailed(l, err)
		}
	}
}

// classifierFailed logs a Classifier that could not price a frame (a panic
// in user code), at most once a second: the caller gets the typed error
// (or, for a required reply, the frame goes out uncounted) and the client
// carries on.
func (d *durable) classifierFailed(l *ratelimit.Limiter, err error) {
	if d.classifierLog.allow() {
		d.log.Error("rate-limit classifier failed", zap.String("limiter", l.Name()), zap.Error(err))
	}
}

// A server that pings more than pingFloodRate times in each of
// pingFloodSeconds consecutive clock seconds is flooding (the first of
// them may be partial, so a flood is caught after 1 to 3 s of it, at the
// 51st ping of the third second): every ping costs a pong
// (charged to the rate limiter, and counted by venues such as Binance
// against the client), so the client ends that connection with
// ErrPingFlood, counts it (Health.PingFloods), logs it and reconnects.
// Real venues ping every few seconds at most (Binance every 20 s).
const (
	pingFloodRate    = 50
	pingFloodSeconds = 3
)

// ErrPingFlood: the server sent more than pingFloodRate pings a second for
// pingFloodSeconds seconds; the client closed the connection (and
// reconnects, as after any lost connection).
var ErrPingFlood = errors.New("zenws: the server flooded the connection with pings")

// serverPings is one dialled connection's view of the server's pings: when
// the last came (the Binance heartbeat) and, while its reader runs, the
// connection they arrive on (the ping-flood guard).
type serverPings struct {
	last   atomic.Int64               // unix nanos of the last ping
	target atomic.Pointer[pingTarget] // set by startReader, nil once it ends

	// The hook's state (onPing): only the connection's reader goroutine
	// touches it. Here rather than in a closure's variables, each of which
	// would be an allocation of its own per connection.
	d             *durable
	window        int64 // the current second (unix)
	count, streak int
	flooded       bool
}

// pingTarget is the connection a serverPings belongs to.
type pingTarget struct {
	conn *transport.Conn
	gen  uint64
}

// onServerPing returns the hook for the server's pings on one connection
// (coder/websocket calls it on the connection's reader goroutine, before it
// answers with a pong): it records the time for the Binance heartbeat,
// charges the pong to the rate limiter and watches for a ping flood.
func (d *durable) onServerPing(pings *serverPings) func([]byte) {
	pings.d = d
	return pings.onPing
}

func (p *serverPings) onPing([]byte) {
	d := p.d
	now := time.Now()
	p.last.Store(now.UnixNano())
	d.chargeControl() // coder/websocket answers with a pong
	if sec := now.Unix(); sec != p.window {
		if p.count > pingFloodRate && sec == p.window+1 {
			p.streak++
		} else {
			p.streak = 0
		}
		p.window, p.count = sec, 0
	}
	p.count++
	if p.flooded || p.count <= pingFloodRate || p.streak < pingFloodSeconds-1 {
		return
	}
	p.flooded = true
	t := p.target.Load()
	if t == nil {
		return // its reader has ended: so has the connection
	}
	d.rareCounts().pingFloods.Add(1)
	err := fmt.Errorf("%w (over %d a second for %d s)", ErrPingFlood, pingFloodRate, pingFloodSeconds)
	d.log.Warn("the server is flooding pings: closing the connection", zap.Uint64("generation", t.gen), zap.Error(err))
	if !d.isStopped() {
		d.sys.Root.Send(d.pid, &connLost{gen: t.gen, err: err})
	}
	// Not here: this runs inside the connection's Read, which CloseNow
	// waits for. The reader then ends quietly; the actor learned why above.
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		_ = t.conn.CloseNow()
	}()
}
