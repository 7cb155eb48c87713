package actors

import (
	"context"
	"errors"
	"fmt"

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
func WithRateLimiter(l *ratelimit.Limiter, p RatePolicy) Option {
	return func(c *Config) { c.RateLimiter, c.RatePolicy = l, p }
}

// WithDialLimiter makes every connection attempt (first connect, reconnects,
// restarts) wait for a token of l before dialling. Share one limiter
// between every client that dials from the same IP, for example
// ratelimit.BinanceConnections, so that a reconnect storm of a whole pool
// stays within the venue's connection limit.
func WithDialLimiter(l *ratelimit.Limiter) Option { return func(c *Config) { c.DialLimiter = l } }

// pace says how the rate limiter treats a frame.
type pace uint8

const (
	paceUser   pace = iota // the client's RatePolicy
	paceWait               // the client's own traffic that must go out: restores, connect hooks
	paceCharge             // replies a venue requires at once: counted, never delayed
)

// via says where and how a frame goes: on conn (nil: the published
// connection), paced as pace says.
type via struct {
	conn *transport.Conn
	pace pace
}

// admit takes the frame's tokens from the rate limiter as pace says.
func (d *durable) admit(ctx context.Context, p pace, data []byte) error {
	l := d.cfg.RateLimiter
	if l == nil {
		return nil
	}
	f := ratelimit.Frame{Data: data}
	switch {
	case p == paceCharge:
		l.Charge(f)
		return nil
	case p == paceUser && d.cfg.RatePolicy == RateReject:
		if l.Allow(f) {
			return nil
		}
		d.rateLimited.Add(1)
		return fmt.Errorf("%w: %s limit reached (policy reject)", ErrRateLimited, l.Name())
	}
	waited, err := l.WaitFor(ctx, f)
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
	if l := d.cfg.RateLimiter; l != nil {
		l.Charge(ratelimit.Frame{Control: true})
	}
}
