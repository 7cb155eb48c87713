package wstest

import (
	"time"
)

// DefaultReadLimit is the server-side read limit applied to every
// connection unless WithReadLimit says otherwise. It is deliberately large
// so that tests can send big frames.
const DefaultReadLimit int64 = 64 << 20

// DefaultWriteTimeout bounds every write the server makes (replies, echoes,
// pings, heartbeats, injected messages) unless WithWriteTimeout says
// otherwise, so that a client that stops reading cannot freeze the server.
const DefaultWriteTimeout = 5 * time.Second

// Option configures a Server created by NewServer or NewTLSServer.
type Option func(*config)

type config struct {
	echo              bool
	responders        map[string]Responder
	pingInterval      time.Duration
	heartbeatInterval time.Duration
	deribit           bool
	subprotocols      []string
	readLimit         int64
	writeTimeout      time.Duration
	captureLimit      int
}

func newConfig(opts []Option) config {
	cfg := config{
		echo:         true,
		responders:   make(map[string]Responder),
		readLimit:    DefaultReadLimit,
		writeTimeout: DefaultWriteTimeout,
		captureLimit: DefaultCaptureLimit,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg
}

// WithEcho turns echoing on or off. With echo on (the default) every text or
// binary message that is not answered by a JSON-RPC responder is sent back
// unchanged, with the same message type.
func WithEcho(on bool) Option {
	return func(c *config) { c.echo = on }
}

// WithResponder registers fn as the JSON-RPC responder for method. It
// overrides any built-in responder (see WithDeribit) for the same method.
// A nil fn is ignored. Responders can also be added after start with
// Server.Handle.
func WithResponder(method string, fn Responder) Option {
	return func(c *config) {
		if fn != nil {
			c.responders[method] = fn
		}
	}
}

// WithServerPings makes the server send a WebSocket ping on every
// connection each interval. Each ping waits at most one interval (and at
// most the write timeout) for its pong; pings sent and pongs received are
// counted per connection (Conn.PingsSent, Conn.PongsReceived). A missing
// pong does not close the connection. An interval <= 0 disables pings.
func WithServerPings(interval time.Duration) Option {
	return func(c *config) { c.pingInterval = interval }
}

// WithDeribitHeartbeat starts a Deribit-style heartbeat on every connection
// as soon as it is accepted: each interval the server sends
//
//	{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}
//
// and if no request with method "public/test" has arrived by the time the
// next test_request is due, it closes the connection with status 1000 and
// reason "heartbeat timeout" (see Conn.HeartbeatTimedOut and
// Server.HeartbeatTimeouts). It also installs the built-in "public/test"
// responder unless one is registered explicitly. An interval <= 0 disables
// the automatic heartbeat (a client can still start one with
// "public/set_heartbeat" in WithDeribit mode).
func WithDeribitHeartbeat(interval time.Duration) Option {
	return func(c *config) { c.heartbeatInterval = interval }
}

// WithDeribit switches on an exchange-like mode that mimics the Deribit
// JSON-RPC API closely enough for client tests. It installs built-in
// responders for:
//
//   - "public/test": result {"version":"wstest"}; also satisfies the heartbeat.
//   - "public/set_heartbeat": params {"interval": seconds} (fractional values
//     such as 0.05 are allowed); starts the test_request heartbeat for that
//     connection; result "ok".
//   - "public/disable_heartbeat": stops it; result "ok".
//   - "public/subscribe", "private/subscribe": params {"channels":[...]};
//     adds to the connection's channel set; result is the list of channels
//     subscribed.
//   - "public/unsubscribe", "private/unsubscribe": removes; result is the
//     list of channels that were removed.
//   - "public/unsubscribe_all", "private/unsubscribe_all": clears; result "ok".
//   - "public/auth": result {"access_token":"tok","expires_in":900,
//     "refresh_token":"ref","token_type":"bearer"}.
//   - "public/get_time": result is the server time in Unix milliseconds.
//
// Subscription notifications are sent with Server.Publish or Conn.Publish.
// Responders registered with WithResponder or Server.Handle take precedence.
func WithDeribit() Option {
	return func(c *config) { c.deribit = true }
}

// WithSubprotocols sets the WebSocket subprotocols the server is willing to
// negotiate, in order of preference. The negotiated one is reported by
// Conn.Subprotocol.
func WithSubprotocols(protos ...string) Option {
	return func(c *config) { c.subprotocols = append([]string(nil), protos...) }
}

// DefaultCaptureLimit is how many received messages each connection keeps
// for Received and WaitReceived unless WithCaptureLimit says otherwise.
const DefaultCaptureLimit = 100000

// WithCaptureLimit bounds the messages each connection records (default
// DefaultCaptureLimit), so a long-running server's memory stays bounded.
// The first n are kept; later ones are still counted (Conn.ReceivedCount)
// and answered, but not stored. n <= 0 means the default.
func WithCaptureLimit(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.captureLimit = n
		}
	}
}

// WithReadLimit sets the maximum size of a message the server accepts
// (DefaultReadLimit if not set). A larger message makes the server close the
// connection with status 1009 (message too big). -1 disables the limit.
func WithReadLimit(n int64) Option {
	return func(c *config) { c.readLimit = n }
}

// WithWriteTimeout bounds every write the server makes on a connection
// (DefaultWriteTimeout if not set). When a write times out the connection is
// closed, as coder/websocket does on any write error.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.writeTimeout = d
		}
	}
}
