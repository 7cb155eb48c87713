package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go.uber.org/zap"
	"reflect"
	"slices"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
)

// WithVenue gives the client a venue's protocol knowledge (package
// actors/venue; actors/venue/deribit and actors/venue/binance come with
// zenws): its subscription dialect (unless Config.Dialect names another), its
// classification of frames (notifications that are not JSON-RPC, such as
// Binance's combined streams; maintenance notices, on which the client
// rotates ahead of time), and its rate limiter (unless WithRateLimiter
// gives one; see venue.RateLimited). Default none: Deribit's dialect, no
// classification, no limiter.
func WithVenue(v venue.Venue) Option { return func(c *Config) { c.Venue = v } }

// defaultVenue is what a client without a venue of its own speaks:
// Deribit's dialect, as decided (ARCHITECTURE.md, "The default
// subscription dialect is Deribit's"), and Deribit's probe for the
// contract's HeartbeatDeribit. The one place the core names a venue (the
// contract's HeartbeatDeribit and HeartbeatBinance name it too).
var defaultVenue = deribit.Venue{}

// prober is the venue whose request heartbeat HeartbeatDeribit uses: the
// client's venue when it has one, else the default.
func (c *Config) prober() venue.Prober {
	if p, ok := c.Venue.(venue.Prober); ok {
		return p
	}
	return defaultVenue
}

// dialect is the client's subscription dialect: Config.Dialect, else the
// venue's, else the default.
func (c *Config) dialect() venue.Dialect {
	switch {
	case c.Dialect != nil:
		return c.Dialect
	case c.venueDialect != nil: // asked once, per client (venueParts)
		return c.venueDialect
	}
	return defaultVenue.Dialect()
}

// askVenue calls fn, a method of the venue (user code), once: a panic
// makes the configuration invalid (Validate refuses it, naming the method),
// never a crash. The panic's value is not kept: it may hold secrets.
func (c *Config) askVenue(method string, fn func()) {
	if guard("venue "+method, func() error { fn(); return nil }) != nil && c.venueErr == nil {
		c.venueErr = &ConfigError{Field: "Venue", Problem: fmt.Sprintf("its %s panicked", method)}
	}
}

// nilVenue reports a venue that is a nil pointer (or other nil value) in
// a non-nil interface: WithVenue(v) of a v a constructor returned with an
// error. Config.Validate refuses it.
func nilVenue(v venue.Venue) bool {
	if v == nil {
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Interface, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// venueHeartbeat makes a venue's text heartbeat the client's unless
// WithHeartbeat chose one.
func (c *Config) venueHeartbeat() {
	if c.heartbeatSet || c.Venue == nil || nilVenue(c.Venue) {
		return
	}
	if tp, ok := c.Venue.(venue.TextPinger); ok {
		var p venue.TextPing
		c.askVenue("TextPing", func() { p = tp.TextPing() })
		if len(p.Ping) > 0 && p.Every > 0 && len(p.Pong) == 0 && c.venueErr == nil {
			// No pong could ever answer: every ping a miss, a reconnect loop.
			c.venueErr = &ConfigError{Field: "Venue", Problem: "its TextPing has a Ping but no Pong"}
		}
		if len(p.Ping) > 0 && p.Every > 0 {
			c.Heartbeat, c.HeartbeatInterval = HeartbeatText, p.Every
		}
	}
}

// venueParts fills in what a venue adds for one client: its limiter (see
// venueLimiter), its secrets, and its connect work as the first hook.
func (c *Config) venueParts() {
	if c.partsDone {
		return // asked already (Connect asks them by its ctx)
	}
	c.partsDone = true
	if nilVenue(c.Venue) {
		c.Venue = nil // Validate has refused it; never call into it
	}
	if c.Venue != nil && c.Dialect == nil {
		c.askVenue("Dialect", func() { c.venueDialect = c.Venue.Dialect() })
		if c.venueDialect == nil && c.venueErr == nil {
			// Not Deribit's spelling in its place: a venue's subscriptions
			// in another venue's words are refused or, worse, half work.
			c.venueErr = &ConfigError{Field: "Venue", Problem: "its Dialect returned nil"}
		}
	}
	c.venueLimiter()
	if s, ok := c.Venue.(venue.Secreter); ok {
		var secrets []string
		if err := guard("venue secrets", func() error { secrets = s.Secrets(); return nil }); err != nil {
			// Not the panic's value: it may hold the very secrets.
			logger(c).Error("the venue's Secrets panicked: its secrets are unknown to the scrubber")
		}
		c.Secrets = append(c.Secrets[:len(c.Secrets):len(c.Secrets)], secrets...)
	}
	if r, ok := c.Venue.(venue.Redactor); ok {
		if err := guard("venue secret fields", func() error { c.secretFields = r.SecretFields(); return nil }); err != nil {
			logger(c).Error("the venue's SecretFields panicked: only the generic secret names are masked")
		}
	}
	if cn, ok := c.Venue.(venue.Connector); ok {
		hook := func(ctx context.Context, s *Setup) error {
			err := cn.OnConnect(ctx, s)
			var pe *venue.PermanentError
			if errors.As(err, &pe) {
				return Fatal(err)
			}
			return err
		}
		c.ConnectHooks = append([]ConnectHook{hook}, c.ConnectHooks...)
	}
	if hook := c.deadManHook(); hook != nil { // after the venue's login, before the user's hooks (deadman.go)
		at := 0
		if _, ok := c.Venue.(venue.Connector); ok {
			at = 1
		}
		c.ConnectHooks = slices.Insert(slices.Clip(c.ConnectHooks), at, hook)
	}
}

// limiter is the rate limiter the client's frames draw from: its own (or
// its venue's per-client one), else the current connection's from a
// venue.ConnectionLimited; nil: none.
func (d *durable) limiter() *ratelimit.Limiter {
	if l := d.cfg.RateLimiter; l != nil {
		return l
	}
	return d.connLimiter.Load()
}

// newConnectionLimit gives a new connection a fresh limiter from a
// venue.ConnectionLimited (unless the client has a limiter of its own).
func (d *durable) newConnectionLimit() {
	if d.cfg.rateLimiterSet || d.cfg.RateLimiter != nil {
		return
	}
	if cl, ok := d.cfg.Venue.(venue.ConnectionLimited); ok {
		var l *ratelimit.Limiter
		if guard("venue limiter", func() error { l = cl.ConnectionLimit(); return nil }) == nil {
			d.connLimiter.Store(l)
		}
	}
}

// venueLimiter fills in the venue's rate limiter for a client that has
// none of its own (asked once per client: see venue.RateLimited).
func (c *Config) venueLimiter() {
	if c.rateLimiterSet || c.RateLimiter != nil || c.Venue == nil {
		return
	}
	if rl, ok := c.Venue.(venue.RateLimited); ok {
		c.askVenue("RateLimit", func() { c.RateLimiter = rl.RateLimit() })
	}
}

// correlate asks the venue (a venue.Correlator) which request a frame
// answers; a panicking Correlator matches nothing.
func (c *Config) correlate(data []byte) (r venue.Response, ok bool) {
	v, is := c.Venue.(venue.Correlator)
	if !is {
		return venue.Response{}, false
	}
	defer func() {
		if recover() != nil {
			r, ok = venue.Response{}, false
		}
	}()
	return v.Correlate(data)
}

// resultOf is what a response carries for Dialect.Confirmed: the venue's
// Result, or the JSON-RPC "result".
func (d *durable) resultOf(resp []byte, vr *venue.Response) json.RawMessage {
	if vr != nil {
		return vr.Result
	}
	env, _ := jsonrpc.Peek(resp)
	return json.RawMessage(env.Result)
}

// classify asks the venue what a frame is; a panicking Classifier leaves
// the frame plain data.
func (c *Config) classify(data []byte) (cl venue.Class) {
	v, ok := c.Venue.(venue.Classifier)
	if !ok {
		return venue.Class{}
	}
	defer func() {
		if recover() != nil {
			cl = venue.Class{}
		}
	}()
	return v.Classify(data)
}

// logger is c's logger, or a no-op one before it is set.
func logger(c *Config) *zap.Logger {
	if c.Logger == nil {
		return nopLogger
	}
	return c.Logger
}
