// Package venue is what an exchange adds to the generic zenws client, as
// small interfaces a venue package implements: how subscriptions are
// spelled (Dialect), which frames are notifications, maintenance notices
// or heartbeat traffic (Classifier), the venue's own rate limits
// (RateLimited). The client core (package actors) names no venue: it asks
// the Venue it was given (actors.WithVenue).
//
// The packages under it (venue/deribit, venue/binance) implement Venue for
// their exchange; another exchange is a package of its own written against
// these interfaces alone. This package imports nothing of the client, so a
// venue package never depends on the client's internals.
//
// Optional capabilities are interfaces of their own, found with a type
// assertion: a venue implements what it needs, and adding a capability
// later does not break a venue written before it.
package venue

import (
	"encoding/json"

	"github.com/zenws/zenws/actors/ratelimit"
)

// Venue is one exchange's protocol knowledge.
type Venue interface {
	// Name is the venue's short name, e.g. "deribit", for logs.
	Name() string
	// Dialect is how the venue spells subscriptions.
	Dialect() Dialect
}

// Classifier is a Venue that recognises its own frames. Classify sees
// every text frame the client does not consume itself (responses to its
// requests, JSON-RPC subscription notifications): it must be fast, must
// not keep data, and must not panic (a panic is recovered and the frame
// delivered as is).
type Classifier interface {
	Classify(data []byte) Class
}

// Class is what a Classifier says of one frame; the zero Class is plain
// data, delivered as it is.
type Class struct {
	// Channel, when not empty, makes the frame a notification of that
	// channel (Inbound.Kind KindNotification, Inbound.Channel).
	Channel string
	// Maintenance: the venue announces that it will close the connection
	// soon; the client replaces it ahead of time, with no gap. The frame
	// is delivered too.
	Maintenance bool
}

// RateLimited is a Venue with limits of its own on what a client may send.
// A client configured without a limiter of its own (actors.WithRateLimiter)
// uses the one RateLimit returns, asked once per client: a venue that
// counts per connection returns a fresh limiter each time, one that counts
// per account returns the account's shared one; nil means none.
type RateLimited interface {
	RateLimit() *ratelimit.Limiter
}

// SubscriptionOp is subscribe or unsubscribe.
type SubscriptionOp int

// Subscription operations.
const (
	OpSubscribe SubscriptionOp = iota + 1
	OpUnsubscribe
)

// String returns "subscribe" or "unsubscribe".
func (op SubscriptionOp) String() string {
	if op == OpUnsubscribe {
		return "unsubscribe"
	}
	return "subscribe"
}

// SubscriptionRequest is one request a Dialect makes for some channels.
type SubscriptionRequest struct {
	Op       SubscriptionOp
	Method   string   // e.g. "public/subscribe", "SUBSCRIBE"
	Channels []string // the channels this request covers
}

// Dialect is how an exchange spells subscriptions.
type Dialect interface {
	// Requests splits channels into the requests op needs (Deribit sends
	// private channels with private/subscribe).
	Requests(op SubscriptionOp, channels []string) []SubscriptionRequest
	// Encode builds the wire message of r with the client's id.
	Encode(r SubscriptionRequest, id uint64) ([]byte, error)
	// Confirmed reads a successful result: the channels of r that the
	// server confirmed. The client keeps only the channels r names (each
	// once): a channel a venue confirms that was never asked for is
	// ignored and counted in Health.ConfirmationsIgnored.
	Confirmed(r SubscriptionRequest, result json.RawMessage) ([]string, error)
}
