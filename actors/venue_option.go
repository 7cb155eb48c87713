package actors

import (
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
)

// WithVenue gives the client a venue's protocol knowledge (package
// actors/venue; actors/venue/deribit and actors/venue/binance come with
// zenws): its subscription dialect (unless WithDialect names another), its
// classification of frames (notifications that are not JSON-RPC, such as
// Binance's combined streams; maintenance notices, on which the client
// rotates ahead of time), and its rate limiter (unless WithRateLimiter
// gives one; see venue.RateLimited). Default none: Deribit's dialect, no
// classification, no limiter.
func WithVenue(v venue.Venue) Option { return func(c *Config) { c.Venue = v } }

// defaultDialect is the dialect of a client without a venue or a dialect
// of its own: Deribit's, as decided (ARCHITECTURE.md, "The default
// subscription dialect is Deribit's"). The one place the core names a
// venue; the contract's HeartbeatDeribit and HeartbeatBinance name the
// other two.
var defaultDialect venue.Dialect = deribit.Dialect{}

// dialect is the client's subscription dialect: WithDialect's, else the
// venue's, else the default.
func (c *Config) dialect() Dialect {
	switch {
	case c.Dialect != nil:
		return c.Dialect
	case c.Venue != nil:
		if d := c.Venue.Dialect(); d != nil {
			return d
		}
	}
	return defaultDialect
}

// venueLimiter fills in the venue's rate limiter for a client that has
// none of its own (asked once per client: see venue.RateLimited).
func (c *Config) venueLimiter() {
	if c.rateLimiterSet || c.RateLimiter != nil || c.Venue == nil {
		return
	}
	if rl, ok := c.Venue.(venue.RateLimited); ok {
		c.RateLimiter = rl.RateLimit()
	}
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
