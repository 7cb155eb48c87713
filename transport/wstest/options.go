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

	creds          *deribitCreds   // nil: any public/auth succeeds
	tokenTTL       time.Duration   // lifetime of an access token
	credits        *DeribitCredits // nil: no rate limits
	tickerInterval time.Duration   // 0: no periodic notifications
	maxConnAge     time.Duration   // 0: connections live until closed
	bookChannels   []string        // channels a Book serves (WithBook): the ticker leaves them alone

	okx          bool
	okxCreds     *okxCreds // nil: any login succeeds
	okxIdle      time.Duration
	okxReqLimit  int
	okxReqWindow time.Duration
}

func newConfig(opts []Option) config {
	cfg := config{
		echo:         true,
		responders:   make(map[string]Responder),
		readLimit:    DefaultReadLimit,
		writeTimeout: DefaultWriteTimeout,
		captureLimit: DefaultCaptureLimit,
		tokenTTL:     DefaultDeribitTokenTTL,
		okxIdle:      DefaultOKXIdle,
		okxReqLimit:  DefaultOKXRequestLimit,
		okxReqWindow: DefaultOKXRequestWindow,
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
//   - "public/auth": authenticates the connection for the token lifetime
//     (WithDeribitTokenTTL). Without WithDeribitCredentials every call
//     succeeds with the fixed result {"access_token":"tok","expires_in":900,
//     "refresh_token":"ref","token_type":"bearer","scope":"connection"}
//     (expires_in follows the TTL); with it, the credentials are checked as
//     the venue does (see WithDeribitCredentials).
//   - "public/get_time": result is the server time in Unix milliseconds.
//   - "private/get_account_summary", "private/buy", "private/sell":
//     described under WithDeribitCredentials, but served with or without
//     it; orders are counted by Server.Orders. An order rests "open" until
//     Server.FillOrder fills it (a trade, notified on the user.trades.* and
//     user.orders.* channels that cover it) or cancel-on-disconnect cancels
//     it.
//   - "private/enable_cancel_on_disconnect", "private/disable_cancel_on_disconnect",
//     "private/get_cancel_on_disconnect": params {"scope": "connection" (the
//     default) or "account"}; result "ok", or {"scope":..,"enabled":bool}.
//     When a connection with it armed ends (closed, reset, killed), the open
//     orders placed on it are cancelled (order_state "cancelled",
//     cancel_reason "cancel_on_disconnect"); without it they stay open. Scope
//     "account" arms every new connection. Server.RefuseCancelOnDisconnect
//     makes the next calls fail.
//   - "private/get_open_orders": the open orders (params "kind" filters).
//   - "private/get_user_trades_by_currency" (currency, kind) and
//     "private/get_user_trades_by_instrument" (instrument_name): the trades
//     the server made, within start_id/end_id, start_seq/end_seq and
//     start_timestamp/end_timestamp (inclusive), sorting "asc" (else newest
//     first), count (default 10, at most 1000); result {"trades": [...],
//     "has_more": bool} with Deribit's trade_id, trade_seq and timestamp.
//
// Built-in private methods answer error CodeUnauthorized (13009,
// "unauthorized") on a connection that is not authenticated (never
// authenticated, or its token expired). For compatibility with tests
// written before authentication was modelled, private/subscribe,
// private/unsubscribe and private/unsubscribe_all are exempt unless
// WithDeribitCredentials is given. Private methods served by WithResponder
// or Server.Handle are never checked: such a responder can consult
// Conn.Authenticated itself.
//
// Subscription notifications are sent with Server.Publish or Conn.Publish,
// or periodically with WithDeribitTicker. Responders registered with
// WithResponder or Server.Handle take precedence over built-in ones.
func WithDeribit() Option {
	return func(c *config) { c.deribit = true }
}

// WithDeribitCredentials makes "public/auth" check credentials like the
// venue, for the one sub-account clientID/clientSecret. It implies
// WithDeribit. Accepted grants (every parameter goes in "params"):
//
//   - "client_credentials": client_id and client_secret must match.
//   - "client_signature": client_id; timestamp in Unix milliseconds, at
//     most 60 s away from the server's clock; a non-empty nonce, which may
//     not be used twice with the same timestamp; data (optional, "" if
//     absent); signature = lowercase hex of HMAC-SHA256 with key
//     clientSecret over timestamp + "\n" + nonce + "\n" + data.
//   - "refresh_token": refresh_token must have been issued by this server
//     (on any connection) and not used before: each refresh token works
//     once, since every successful auth returns a new one. Refresh tokens
//     do not expire with time.
//
// A missing parameter or an unknown grant_type gets CodeInvalidParams;
// wrong credentials, a bad signature, a stale timestamp, a reused nonce or
// an unknown refresh token get CodeInvalidCredentials (13004,
// "invalid_credentials") with a short reason in "data". The result is
// {"access_token":<random hex>,"expires_in":<TTL in s>,"refresh_token":
// <random hex>,"token_type":"bearer","scope":"connection mainaccount"}.
// Successful auths are counted by Server.AuthCount and Conn.AuthCount.
//
// The built-in private methods of WithDeribit (authentication required)
// are "private/get_account_summary" (params {"currency"},
// default "BTC"; a small fixed summary) and "private/buy" and
// "private/sell" (params instrument_name, amount > 0, optional type, price
// and label; result {"order":{...,"order_id":<unique>,"order_state":"open",
// "direction":"buy"|"sell"},"trades":[]}), counted by Server.Orders and
// Server.OrdersByLabel. The secret is kept in memory only: the server
// neither logs nor echoes it.
func WithDeribitCredentials(clientID, clientSecret string) Option {
	return func(c *config) {
		c.deribit = true
		c.creds = &deribitCreds{id: clientID, secret: clientSecret}
	}
}

// DefaultDeribitTokenTTL is the lifetime of an access token issued by
// "public/auth" unless WithDeribitTokenTTL says otherwise, the venue's 900 s.
const DefaultDeribitTokenTTL = 900 * time.Second

// WithDeribitTokenTTL sets the lifetime of the access tokens "public/auth"
// issues (default DefaultDeribitTokenTTL), with or without
// WithDeribitCredentials; it implies WithDeribit. When it has elapsed
// without a new successful "public/auth" on the connection, the connection
// is no longer authenticated (Conn.Authenticated is false, built-in private
// methods answer 13009). The result's expires_in is the TTL in whole
// seconds rounded up, at least 1, while the token expires after exactly d,
// so tests may use sub-second TTLs. d <= 0 means the default.
func WithDeribitTokenTTL(d time.Duration) Option {
	return func(c *config) {
		c.deribit = true
		if d <= 0 {
			d = DefaultDeribitTokenTTL
		}
		c.tokenTTL = d
	}
}

// WithDeribitCredits enforces Deribit's rate limits (see DeribitCredits)
// and implies WithDeribit. Without it requests are never limited.
func WithDeribitCredits(cr DeribitCredits) Option {
	return func(c *config) {
		c.deribit = true
		c.credits = &cr
	}
}

// WithDeribitTicker makes the server publish, every interval, one
// notification for each channel that any connection is subscribed to:
//
//	{"jsonrpc":"2.0","method":"subscription","params":{"channel":CH,"data":{"channel_seq":N,"timestamp":MS}}}
//
// to every (non-stalled) connection subscribed to CH. N counts per channel
// across the whole server, starting at 1, so a client holding two
// connections to the same channel can deduplicate: the bytes for one
// (channel, N) are the same on every connection. MS is the server time in
// Unix milliseconds. Server.Published reports the last N. One goroutine
// serves all connections; Close stops it. It implies WithDeribit. An
// interval <= 0 disables the ticker.
func WithDeribitTicker(interval time.Duration) Option {
	return func(c *config) {
		c.deribit = true
		c.tickerInterval = interval
	}
}

// WithMaxConnAge makes the server close every connection d after it was
// accepted, as Binance does after 24 hours, with close code 1001 (going
// away) and reason MaxConnAgeReason. d <= 0 (the default) disables it.
func WithMaxConnAge(d time.Duration) Option {
	return func(c *config) { c.maxConnAge = d }
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
