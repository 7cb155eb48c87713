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
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/zenws/zenws/actors/ratelimit"
)

// Venue is one exchange's protocol knowledge. Its methods (and those of
// the capabilities below) must return promptly and may be called from any
// goroutine. Dialect, RateLimit and TextPing are asked once per client, when
// it is created (actors.Connect by its ctx); a panic in any of them is
// contained and makes the client's configuration invalid.
type Venue interface {
	// Name is the venue's short name, e.g. "deribit", for logs.
	Name() string
	// Dialect is how the venue spells subscriptions; never nil (a client
	// refuses a venue whose Dialect is nil, with a *ConfigError).
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

// Correlator is a Venue whose answers to requests are not JSON-RPC
// responses ({"id":..,"result"|"error":..}): it says which request a frame
// answers. Correlate sees every text frame on the reader goroutine before
// anything else (keep it fast; a panic is recovered and the frame treated
// as not an answer).
type Correlator interface {
	Correlate(data []byte) (Response, bool)
}

// Response is a frame a Correlator matched to a request.
type Response struct {
	// ID is the request's id as it appears in the frame (raw JSON: a
	// number or a string), matched with the id of the request the client
	// sent.
	ID json.RawMessage
	// Result is what a successful answer carries, for Dialect.Confirmed.
	Result json.RawMessage
	// Err is the venue's refusal; nil for a success.
	Err *Error
}

// Error is a venue's refusal of a request (the client returns it as an
// *actors.RPCError; a Session's errors match *Error too).
type Error struct {
	Code    int
	Message string
}

// Error returns "venue error <code>: <message>".
func (e *Error) Error() string { return fmt.Sprintf("venue error %d: %s", e.Code, e.Message) }

// Connector is a Venue with work to do on every new connection before the
// client restores its subscriptions and reports itself connected, such as
// a login. An error fails the connection attempt (retried with backoff); a
// venue marks a permanent one (wrong credentials) with actors.Fatal's
// counterpart, Permanent.
type Connector interface {
	OnConnect(ctx context.Context, s Session) error
}

// Permanent marks err as one that retrying cannot cure (wrong
// credentials): returned from OnConnect, the client stops instead of
// retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// PermanentError is an error Permanent marked.
type PermanentError struct{ Err error }

// Error returns the cause's text.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Session is a new connection while a Connector's OnConnect runs (the
// client's actors.Setup). Its requests go on that connection only.
type Session interface {
	// NextID returns a fresh id from the client's own sequence, for a
	// request the venue builds.
	NextID() uint64
	// Request sends msg, which carries an id, and waits for the frame
	// that answers it (the venue's Correlator, or a JSON-RPC response);
	// a refusal is an error that errors.As finds as an *Error.
	Request(ctx context.Context, msg []byte) (json.RawMessage, error)
	// Send writes one text message.
	Send(ctx context.Context, data []byte) error
	// AddSecrets names values the client must never show (a token, a
	// login's signature); the newest are kept, about 50 values (see
	// actors.Client.AddSecrets).
	AddSecrets(values ...string)
	// Generation is the connection's generation.
	Generation() uint64
	// Reconnected reports whether the client had a connection before this
	// one that it lost (Health.Reconnects or Health.Restarts above zero):
	// what was sent while there was none may have been missed. False on a
	// client's first connection.
	Reconnected() bool
	// Rotating reports whether another connection of the client is live
	// while this one is set up (a planned rotation, make-before-break):
	// nothing is being missed, the old connection still delivers.
	Rotating() bool
	// Delivered waits until every message the client accepted for delivery
	// before the call has been handed to the handler (and seen by the
	// venue's Observer), or ctx ends.
	Delivered(ctx context.Context) error
	// Backfill delivers data, a notification of channel the venue fetched
	// for what changed while there was no connection, in the client's
	// stream after what it already delivered and before this connection's
	// own notifications: an Inbound of KindNotification with Backfill set.
	Backfill(channel string, data []byte)
}

// Observer is a Venue that follows some of the notifications the client
// delivers (the last trade a user saw, for the backfill after a
// reconnect). Observe sees each notification whose channel starts with
// ObservePrefix (asked once per client), on the delivery goroutine, just
// before the handler, in the order the handler gets them. It must be fast,
// must not keep or change data, and must not block; a panic in it is
// recovered and the message delivered all the same.
type Observer interface {
	ObservePrefix() string
	Observe(channel string, data []byte)
}

// TextPinger is a Venue whose heartbeat is a text message: the client
// sends Ping every Every (unless the user chose another heartbeat) and
// counts the interval unanswered when no Pong came back. Pong frames are
// consumed, never delivered.
type TextPinger interface {
	TextPing() TextPing
}

// TextPing is a text heartbeat.
type TextPing struct {
	Ping, Pong []byte
	Every      time.Duration
}

// Secreter is a Venue that holds secrets of its own (credentials): the
// client hides them from every log line, error, Health field and
// recording.
type Secreter interface {
	Secrets() []string
}

// Redactor is a Venue whose messages carry secrets under member names of
// its own: the client masks their values in recordings, and the value after
// such a name ("name=value", "name: value") in error and log text, besides
// the names every client masks (key, secret, token, signature, password,
// passphrase and the like: see actors.WithRecorder). Names compare in any
// case, with '_', '-', '.' and spaces ignored. SecretFields is asked once
// per client, when it is created.
type Redactor interface {
	SecretFields() []string
}

// Prober is a Venue whose heartbeat is a request (Deribit's public/test):
// with actors.HeartbeatDeribit the client sends ProbeRequest every interval
// and counts one unanswered within the interval as a miss. The venue's own
// heartbeat notifications are consumed, never delivered; one that asks for
// an answer at once (Deribit's test_request) is answered with a probe.
type Prober interface {
	// ProbeRequest is one probe request carrying id; its answer is matched
	// like any response to the client's requests.
	ProbeRequest(id uint64) []byte
	// HeartbeatFrame reports whether a JSON notification is the venue's
	// heartbeat traffic, and whether it asks for an answer at once.
	HeartbeatFrame(data []byte) (heartbeat, answer bool)
}

// ConnectionLimited is a Venue whose limits count per connection (OKX's
// 480 requests an hour): a client configured without a limiter of its own
// asks ConnectionLimit for a fresh limiter on every new connection, so that
// a reconnect starts with the venue's full budget instead of the spent one
// of the connection before.
type ConnectionLimited interface {
	ConnectionLimit() *ratelimit.Limiter
}

// DeadMan is a Venue with a dead man's switch: a request that makes the
// venue cancel the orders unless it is renewed within a timeout (Binance
// futures' countdownCancelAll, OKX's cancel-all-after). The client arms it
// on every new connection, right after the venue's OnConnect (a login) and
// before its other connect hooks and the subscription restore, and arms it
// again every DeadManAfter/2 on that connection while it is open. So the
// orders stop within DeadManAfter of the connection's loss, however it was
// lost, and of a client that hangs: nothing renews the switch then.
//
// An error from the first arming fails the connection attempt (retried
// with backoff), so a client never reports itself connected with the
// switch unarmed; a failed renewal is logged and tried again at the next
// interval (the venue cancels when the timeout passes). See
// docs/client.md, "A dead man's switch".
type DeadMan interface {
	// DeadManAfter is the timeout T given to the venue, asked once per
	// client; zero or less: no switch. At least 2 s (shorter is taken as
	// 2 s: the renewals must have time to arrive).
	DeadManAfter() time.Duration
	// ArmDeadMan sends the switch's request for after on s and waits for
	// the venue's answer (a refusal is an error).
	ArmDeadMan(ctx context.Context, s Session, after time.Duration) error
}

// StreamLimited is a Venue that caps how many channels (streams) one
// connection may hold (Binance: 1,024). A pool that spreads channels over
// its connections (package feed) places at most MaxStreams on each; 0 or
// less means no cap.
type StreamLimited interface {
	MaxStreams() int
}
