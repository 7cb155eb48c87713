package actors

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/transport"
)

// Defaults. They follow the original ZenWebsocket where it has one.
const (
	defaultTimeout           = 5 * time.Second  // connect + handshake
	defaultRetryCount        = 3                // reconnect attempts before giving up
	defaultRetryDelay        = time.Second      // first backoff's upper bound
	defaultMaxBackoff        = 30 * time.Second // backoff cap
	defaultRequestTimeout    = 30 * time.Second
	defaultHeartbeatInterval = 30 * time.Second
	defaultHeartbeatMisses   = 2
	defaultLatencyBuffer     = 100
	maxLatencyBuffer         = 1 << 16 // samples; the ring is allocated whole on the first one
	defaultInboundQueue      = 4096
	defaultCloseWait         = 5 * time.Second
)

// RetryForever, as RetryCount (WithRetryCount), makes a client retry
// without limit: it never gives up because connections fail (a fatal error
// still stops it), waiting the full-jitter backoff, capped at MaxBackoff,
// between attempts. Connect and StartClient stay bounded by their ctx. It
// is the way to start a client while its venue is down for maintenance.
const RetryForever = -1

// OverflowPolicy says what happens to an inbound message when the handler
// queue is full (the handler or subscriber is slower than the stream).
// Either way the message is counted (Health.InboundDropped) and logged, and
// the next delivered Inbound's Seq jumps, so a gap is always visible.
type OverflowPolicy int

const (
	// DropNewest rejects the arriving message: the handler sees a gap-free
	// prefix of the stream, then a gap. The default.
	DropNewest OverflowPolicy = iota
	// DropOldest evicts the oldest queued message to make room: the handler
	// sees the freshest data (prices) at the cost of older messages.
	DropOldest
)

// String returns the name used in logs.
func (p OverflowPolicy) String() string {
	switch p {
	case DropNewest:
		return "drop_newest"
	case DropOldest:
		return "drop_oldest"
	}
	return fmt.Sprintf("OverflowPolicy(%d)", int(p))
}

// Config is a client's validated configuration. Build it with NewConfig;
// the zero value is not valid. A field with an option is set by it, and
// the option's doc has the details. A field without one is a tuning knob a
// typical program leaves alone; set it with an option literal,
//
//	actors.Option(func(c *actors.Config) { c.WriteTimeout = 2 * time.Second })
//
// passed to NewConfig, Connect or StartClient like any option, or on the
// Config NewConfig returns, before Spawn or Props (docs/client.md,
// "Settings without an option"). An option literal runs after the defaults
// are set, so setting a field to its zero value sets zero: each comment
// says what zero means there (a default, off, or a *ConfigError from
// Validate), besides the default and the bounds Validate enforces.
type Config struct {
	URL                  string        // ws:// or wss:// (NewConfig's url); no default
	Headers              http.Header   // WithHeaders; default none
	Timeout              time.Duration // WithTimeout, connect + handshake; default 5 s, at least 10 ms
	RetryCount           int           // WithRetryCount; default 3, 0 or more, or RetryForever (-1)
	RetryDelay           time.Duration // WithRetryDelay, backoff base; default 1 s, at least 1 ms
	MaxBackoff           time.Duration // WithMaxBackoff; default 30 s, at least RetryDelay
	ReconnectOnError     bool          // WithReconnectOnError; default true
	RestoreSubscriptions bool          // WithRestoreSubscriptions; default true
	RequestTimeout       time.Duration // WithRequestTimeout; default 30 s, at least 1 ms
	Heartbeat            HeartbeatType // WithHeartbeat; default HeartbeatPingPong (or the venue's)
	HeartbeatInterval    time.Duration // WithHeartbeat; default 30 s, at least 10 ms unless disabled

	// HeartbeatMisses is how many heartbeats in a row may go unanswered
	// before the client reconnects. Default 2; at least 1 (0 is a
	// *ConfigError).
	HeartbeatMisses int
	// ServerPingWindow is, for HeartbeatBinance, the longest time without
	// a server ping before the client reconnects. Default 3 heartbeat
	// intervals (60 s for Binance's 20 s pings, Binance's own pong
	// deadline); at least 10 ms. Zero in an option literal keeps the
	// default (NewConfig derives it after the options); zero on a Config
	// given to Spawn or Props is a *ConfigError under HeartbeatBinance.
	ServerPingWindow time.Duration

	ReadLimit int64 // WithReadLimit, bytes; default 16 MiB, positive

	// WriteTimeout bounds each write. Default 10 s; at least 10 ms (0 is a
	// *ConfigError). A write that takes longer (from 0.9 times it on, see
	// transport.Options.WriteTimeout) means the peer is stalled: the
	// connection is closed and re-dialled.
	WriteTimeout time.Duration
	// Subprotocols are the WebSocket subprotocols offered in the
	// handshake. Default none (nil).
	Subprotocols []string

	TLSConfig *tls.Config // WithTLSConfig; default nil (system roots, verified)

	// NetDial opens TCP connections (a custom resolver, socket options, a
	// SOCKS dialer). Default nil: a net.Dialer with 15 s keep-alive. A
	// panic in it is a failed dial (a *PanicError).
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// LatencyBufferSize is how many round-trip samples Health's p50/p99
	// are computed over. Default 100; in [1, 65536] (0 is a *ConfigError).
	LatencyBufferSize int

	InboundQueueSize  int            // WithInboundQueue (where 0 keeps it), messages; default 4096, at least 1
	InboundQueueBytes int64          // WithInboundQueue, bytes; default (0) 64 MiB, not negative
	Overflow          OverflowPolicy // WithInboundQueue; default DropNewest

	// CloseWait bounds how long Close waits for the client to stop and
	// its goroutines (reader, handler, state observer) to end. Default
	// 5 s; at least 1 ms (0 is a *ConfigError).
	CloseWait time.Duration

	Logger        *zap.Logger       // WithLogger; default a no-op logger
	Handler       func(Inbound)     // WithHandler; default nil: none
	Subscriber    *actor.PID        // WithSubscriber; default nil; not with Handler
	OnConnect     func(*actor.PID)  // WithOnConnect; default nil: none
	OnDisconnect  func(*actor.PID)  // WithOnDisconnect; default nil: none
	StateObserver func(StateChange) // WithStateObserver; default nil: none
	// Dialect spells subscriptions, over the venue's (a venue normally
	// brings its own: WithVenue). Implement venue.Dialect to add a
	// venue's spelling without a whole venue. Default nil: the venue's,
	// else Deribit's (package actors/venue/deribit).
	Dialect venue.Dialect
	Venue   venue.Venue // WithVenue; default nil: none

	rateLimiterSet bool          // WithRateLimiter was given: the venue's limiter is not used
	heartbeatSet   bool          // WithHeartbeat was given: the venue's heartbeat is not used
	secretFields   []string      // the venue's own secret member names (venue.Redactor), set per client
	venueDialect   venue.Dialect // the venue's Dialect(), asked once per client
	venueErr       error         // a venue method panicked (askVenue): Validate refuses the configuration
	partsDone      bool          // venueParts ran for this client

	Recorder   io.Writer // WithRecorder, JSONL session recording; default nil: none
	RecordFile string    // WithRecordFile; default "": none; not with Recorder

	// OnRestoreFailed is called when restoring subscriptions on a new
	// connection fails (the client is connected anyway; the channels stay
	// wanted, are retried with backoff on the live connection and shown in
	// Health().Channels, which is the way to watch them). It runs in order
	// with inbound deliveries; a panic is logged. Default nil: none.
	OnRestoreFailed func(client *actor.PID, channels []string, err error)

	RateLimiter *ratelimit.Limiter // WithRateLimiter, outbound frames; default nil: none (or the venue's)
	RatePolicy  RatePolicy         // WithRateLimiter, for the user's own traffic; default RateWait

	// DialLimiter makes every connection attempt (first connect,
	// reconnects, restarts) wait for one of its tokens before dialling.
	// Share one limiter between every client that dials from the same IP,
	// for example ratelimit.BinanceConnections, so that a reconnect storm
	// of a whole pool stays within the venue's connection limit. Default
	// nil: none (the host dial pacer, HostDialRate, still applies).
	DialLimiter *ratelimit.Limiter

	ConnectHooks     []ConnectHook // WithConnectHook, run on every new connection before the restore; default none
	MaxConnectionAge time.Duration // WithMaxConnectionAge; default 0: never rotate, else at least 1 s

	// MeterProvider turns on OpenTelemetry metrics for the client, on its
	// meter "github.com/zenws/zenws/actors". Default nil: off. The
	// observed instruments carry the attribute zenws.client (the client's
	// PID id) and stop being reported when the client stops; the request
	// histogram is one for all clients of the provider (a series per
	// client would live as long as the process):
	//
	//	zenws.client.connects        counter    successful connections (the generation)
	//	zenws.client.reconnects      counter    lost connections the client set out to heal
	//	zenws.client.restarts        counter    restarts by a supervisor
	//	zenws.client.rotations       counter    planned rotations
	//	zenws.client.notifications   counter    subscription notifications received
	//	zenws.client.messages.in     counter    data frames received
	//	zenws.client.messages.out    counter    data frames sent
	//	zenws.client.rate_limit.waits counter   frames that waited for the rate limiter
	//	zenws.client.rate_limited    counter    frames the rate limiter refused
	//	zenws.client.inbound.dropped counter    frames dropped by the inbound overflow policy
	//	zenws.client.pending         gauge      requests waiting for a response
	//	zenws.client.connected       gauge      1 while connected, else 0
	//	zenws.client.request.duration histogram request round trips, seconds
	MeterProvider metric.MeterProvider

	// Handshake redirects (followed by package transport).

	// FollowRedirects lets the handshake follow up to this many 3xx
	// answers. Default 0: a redirect fails the dial with a
	// *transport.RedirectError naming the status and the redacted
	// Location, which is fatal (the client does not retry it); at most 10
	// (transport.MaxFollowRedirects; more, or a negative count, is a
	// *ConfigError). A followed redirect never goes from wss to ws and
	// stays on the URL's origin (scheme, host and port) unless its host is
	// in RedirectHosts. A request to another origin carries none of the
	// client's credentials: its headers (WithHeaders), Authorization,
	// Cookie, its subprotocols and Referer are removed.
	FollowRedirects int
	// RedirectHosts are other hosts (host name, or host:port) a followed
	// redirect may reach, without credentials. Default none.
	RedirectHosts []string

	// Frame-level bounds (enforced by package transport). A frame header followed by
	// silence, a message whose final frame never comes, or one in more
	// frames (such as an endless stream of empty continuation frames)
	// fails the connection with a *transport.ProtocolError (close 1008),
	// even with the heartbeat off, and the client reconnects. The
	// message's size is ReadLimit's.

	// MessageTimeout bounds one inbound message (or control frame) still
	// being received, from its first byte to its last. Default 0: 30 s
	// (transport.DefaultMessageTimeout); else at least 10 ms.
	MessageTimeout time.Duration
	// MaxFragments bounds the frames one inbound message may come in.
	// Default 0: 4096 (transport.DefaultMaxFragments); not negative.
	MaxFragments int

	// Life cycle (lifecycle.go).

	// StableAfter is how long a connection must stay up to count as
	// stable. Default 10 s; at least 10 ms (0 is a *ConfigError). Losing a
	// stable connection redials at once, without a backoff wait, and
	// starts the attempt count anew. A connection lost sooner (a venue
	// that accepts and drops) carries the count on: each further attempt k
	// waits the full-jitter backoff of step k, and after RetryCount
	// attempts the client gives up, so its supervisor's restart budget
	// engages.
	StableAfter time.Duration
	// HostDialRate and HostDialBurst set the dial pacer that all clients
	// of one actor system share per host (the URL's host and port): at
	// most HostDialBurst dials at once, then HostDialRate a second.
	// Defaults 20 and 20; HostDialRate finite and not negative, 0 turning
	// pacing off for this client; HostDialBurst at least 1 while pacing is
	// on. A mass drop of many connections to one venue is spread out by
	// it, while a single client's redial goes straight through. A client's
	// first dial is not paced: it is the program starting the client, not
	// a drop (bound those yourself, or with DialLimiter). Clients with
	// different settings use different pacers. A venue's own connection
	// limit is DialLimiter's job.
	HostDialRate  float64
	HostDialBurst int // see HostDialRate; default 20

	// Secrets and recording bounds (secrets.go, record.go).

	Secrets []string // WithSecrets, values hidden from logs, errors, Health and recordings; default none
	// RecordQueue and RecordQueueBytes bound the frames waiting for the
	// recorder's writer (to be redacted, encoded and written), in count
	// and in bytes of the frames. Defaults (0) 4096 frames and 16 MiB;
	// neither may be negative.
	RecordQueue      int
	RecordQueueBytes int64 // see RecordQueue; default (0) 16 MiB

	// Operator's view (label.go).

	Label string // WithLabel, names the client in Health and its log lines; default "", at most 64 bytes

	// Market data you can trust (sequence.go, freshness.go,
	// docs/market-data.md).

	// Sequencer reads the sequence numbers of wanted channels'
	// notifications (WithSequencer); default the venue's (venue.Sequencer:
	// Deribit's books, Binance's depth), else none.
	Sequencer venue.Sequencer
	// Snapshot fetches a channel's snapshot for a venue whose stream is
	// deltas only (venue.ResyncSnapshot: Binance's diff depth), WithSnapshot;
	// default nil: such a channel's gaps are reported, not repaired.
	Snapshot SnapshotFunc
	// Freshness says how long a channel may stay silent (WithFreshness);
	// default none. At most 64 rules, each at least 10 ms.
	Freshness []FreshnessRule
}

// StateChange is one transition of a client's state, as seen by a
// StateObserver.
type StateChange struct {
	Client     *actor.PID
	From, To   State
	Generation uint64 // the connection generation after the change
	// Err: for StateReconnecting, why the connection ended; for
	// StateDisconnected, Health.StopReason; nil otherwise.
	Err error
}

// Option sets one Config field.
type Option func(*Config)

// ConfigError names the field that is wrong and why. NewConfig, Spawn and
// StartClient return one per bad field, joined with errors.Join: match with
// errors.As(err, new(*ConfigError)).
type ConfigError struct {
	Field   string
	Problem string
}

// Error implements the error interface.
func (e *ConfigError) Error() string { return "zenws: invalid config: " + e.Field + ": " + e.Problem }

// NewConfig applies opts over the defaults and validates the result. All
// problems are reported, each as a *ConfigError naming its field, joined
// with errors.Join.
func NewConfig(url string, opts ...Option) (Config, error) {
	cfg := Config{
		URL:                  url,
		Timeout:              defaultTimeout,
		RetryCount:           defaultRetryCount,
		RetryDelay:           defaultRetryDelay,
		MaxBackoff:           defaultMaxBackoff,
		ReconnectOnError:     true,
		RestoreSubscriptions: true,
		RequestTimeout:       defaultRequestTimeout,
		HeartbeatInterval:    defaultHeartbeatInterval,
		HeartbeatMisses:      defaultHeartbeatMisses,
		ReadLimit:            transport.DefaultReadLimit,
		WriteTimeout:         transport.DefaultWriteTimeout,
		LatencyBufferSize:    defaultLatencyBuffer,
		InboundQueueSize:     defaultInboundQueue,
		CloseWait:            defaultCloseWait,
		Heartbeat:            HeartbeatPingPong, // decided: a dead connection is detected by default
		StableAfter:          defaultStableAfter,
		HostDialRate:         defaultHostDialRate,
		HostDialBurst:        defaultHostDialBurst,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.venueHeartbeat()
	if cfg.ServerPingWindow == 0 {
		cfg.ServerPingWindow = 3 * cfg.HeartbeatInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = nopLogger
	}
	return cfg, cfg.Validate()
}

// Validate reports every invalid field of cfg.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(field, problem string) { errs = append(errs, &ConfigError{Field: field, Problem: problem}) }
	if err := transport.ValidateURL(cfg.URL); err != nil {
		bad("URL", err.Error())
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, fmt.Sprintf("must be positive, got %v", d))
		}
	}
	positive("Timeout", cfg.Timeout)
	positive("RetryDelay", cfg.RetryDelay)
	positive("MaxBackoff", cfg.MaxBackoff)
	positive("RequestTimeout", cfg.RequestTimeout)
	positive("WriteTimeout", cfg.WriteTimeout)
	positive("CloseWait", cfg.CloseWait)
	if cfg.RetryCount < 0 && cfg.RetryCount != RetryForever {
		bad("RetryCount", fmt.Sprintf("must be 0 or more, or RetryForever (%d), got %d", RetryForever, cfg.RetryCount))
	}
	if cfg.RetryDelay > 0 && cfg.MaxBackoff > 0 && cfg.MaxBackoff < cfg.RetryDelay {
		bad("MaxBackoff", fmt.Sprintf("must be >= RetryDelay (%v), got %v", cfg.RetryDelay, cfg.MaxBackoff))
	}
	switch cfg.Heartbeat {
	case HeartbeatDisabled, HeartbeatPingPong, HeartbeatDeribit, HeartbeatBinance:
	case HeartbeatText:
		if _, ok := cfg.Venue.(venue.TextPinger); !ok || nilVenue(cfg.Venue) {
			bad("Heartbeat", "HeartbeatText needs a venue with a text heartbeat (venue.TextPinger, WithVenue)")
		}
	default:
		bad("Heartbeat", fmt.Sprintf("unknown heartbeat type %d", int(cfg.Heartbeat)))
	}
	if cfg.venueErr != nil {
		errs = append(errs, cfg.venueErr)
	}
	if nilVenue(cfg.Venue) {
		bad("Venue", fmt.Sprintf("a nil %T (did its constructor return an error?)", cfg.Venue))
	}
	if cfg.HeartbeatMisses < 1 {
		bad("HeartbeatMisses", fmt.Sprintf("must be at least 1, got %d", cfg.HeartbeatMisses))
	}
	if cfg.ReadLimit <= 0 {
		bad("ReadLimit", fmt.Sprintf("must be positive, got %d", cfg.ReadLimit))
	}
	if cfg.LatencyBufferSize < 1 || cfg.LatencyBufferSize > maxLatencyBuffer {
		bad("LatencyBufferSize", fmt.Sprintf("must be in [1, %d], got %d", maxLatencyBuffer, cfg.LatencyBufferSize))
	}
	if cfg.InboundQueueSize < 1 {
		bad("InboundQueueSize", fmt.Sprintf("must be at least 1, got %d", cfg.InboundQueueSize))
	}
	if cfg.Overflow != DropNewest && cfg.Overflow != DropOldest {
		bad("Overflow", fmt.Sprintf("unknown overflow policy %d", int(cfg.Overflow)))
	}
	if cfg.RecordFile != "" {
		if fi, err := os.Stat(filepath.Dir(cfg.RecordFile)); err != nil || !fi.IsDir() {
			bad("RecordFile", fmt.Sprintf("directory of %q does not exist", cfg.RecordFile))
		}
		if cfg.Recorder != nil {
			bad("RecordFile", "set either a recorder or a record file, not both")
		}
	}
	if cfg.MaxConnectionAge < 0 {
		bad("MaxConnectionAge", fmt.Sprintf("must not be negative, got %v", cfg.MaxConnectionAge))
	}
	if cfg.RatePolicy != RateWait && cfg.RatePolicy != RateReject {
		bad("RatePolicy", fmt.Sprintf("unknown rate policy %d", int(cfg.RatePolicy)))
	}
	// Redirects and frame-level bounds (package transport applies them).
	if cfg.FollowRedirects < 0 || cfg.FollowRedirects > transport.MaxFollowRedirects {
		bad("FollowRedirects", fmt.Sprintf("must be in [0, %d], got %d", transport.MaxFollowRedirects, cfg.FollowRedirects))
	}
	if cfg.MessageTimeout != 0 && cfg.MessageTimeout < minMessageTimeout {
		bad("MessageTimeout", fmt.Sprintf("must be 0 (default %v) or at least %v, got %v", transport.DefaultMessageTimeout, minMessageTimeout, cfg.MessageTimeout))
	}
	if cfg.MaxFragments < 0 {
		bad("MaxFragments", fmt.Sprintf("must be 0 (default %d) or positive, got %d", transport.DefaultMaxFragments, cfg.MaxFragments))
	}
	if cfg.InboundQueueBytes < 0 {
		bad("InboundQueueBytes", fmt.Sprintf("must not be negative, got %d", cfg.InboundQueueBytes))
	}
	if cfg.Handler != nil && cfg.Subscriber != nil {
		bad("Handler", "set either a handler or a subscriber PID, not both")
	}
	cfg.validateLifecycle(bad) // duration minimums, StableAfter, the host dial pacer

	// Recording bounds (issue 12, record.go).
	if cfg.RecordQueue < 0 {
		bad("RecordQueue", fmt.Sprintf("must not be negative, got %d", cfg.RecordQueue))
	}
	if cfg.RecordQueueBytes < 0 {
		bad("RecordQueueBytes", fmt.Sprintf("must not be negative, got %d", cfg.RecordQueueBytes))
	}
	cfg.validateLabel(bad)      // label.go
	cfg.validateMarketData(bad) // freshness.go
	return errors.Join(errs...)
}

// WithHeaders sets headers sent with the upgrade request. Default none.
// Values are never logged.
func WithHeaders(h http.Header) Option { return func(c *Config) { c.Headers = h.Clone() } }

// WithTimeout bounds connect and handshake. Default 5 s; at least
// 10 ms.
func WithTimeout(d time.Duration) Option { return func(c *Config) { c.Timeout = d } }

// WithRetryCount sets how many reconnect attempts follow a lost connection
// (and how many retries follow a failed first connect) before the client
// gives up. Default 3. 0 means give up at the first failure; RetryForever
// (-1) means never give up on a recoverable failure (other negative values
// are a *ConfigError). A client that never gives up never fails to its
// supervisor, so no restart budget is spent on it.
func WithRetryCount(n int) Option { return func(c *Config) { c.RetryCount = n } }

// WithRetryDelay sets the backoff base. Attempt k waits a uniform random
// time in [0, min(MaxBackoff, RetryDelay*2^(k-1))] ("full jitter"). Default
// 1 s; at least 1 ms. The attempt count starts anew only
// after a connection stayed up for Config.StableAfter, and
// the first redial after losing such a connection does not wait.
func WithRetryDelay(d time.Duration) Option { return func(c *Config) { c.RetryDelay = d } }

// WithMaxBackoff caps the backoff. Default 30 s; at least RetryDelay.
func WithMaxBackoff(d time.Duration) Option { return func(c *Config) { c.MaxBackoff = d } }

// WithReconnectOnError turns reconnecting after a lost connection on or off.
// Default true. Off, a lost connection stops the client (a normal stop: a
// supervisor does not restart it).
func WithReconnectOnError(on bool) Option { return func(c *Config) { c.ReconnectOnError = on } }

// WithRestoreSubscriptions turns re-subscribing after a reconnect on or off.
// Default true.
func WithRestoreSubscriptions(on bool) Option {
	return func(c *Config) { c.RestoreSubscriptions = on }
}

// WithRequestTimeout bounds a request's wait for its response. Default 30 s,
// at least 1 ms; a caller's context can only shorten it.
func WithRequestTimeout(d time.Duration) Option { return func(c *Config) { c.RequestTimeout = d } }

// WithHeartbeat selects the heartbeat kind and its interval. Default
// HeartbeatPingPong every 30 s with 2 misses allowed (Config.HeartbeatMisses),
// or the venue's heartbeat with WithVenue, so that a dead connection is found by
// default; WithHeartbeat(HeartbeatDisabled, 0) turns heartbeats off. The
// interval must be at least 10 ms unless disabled.
// See HeartbeatType for what each kind does.
func WithHeartbeat(t HeartbeatType, interval time.Duration) Option {
	return func(c *Config) { c.Heartbeat, c.HeartbeatInterval, c.heartbeatSet = t, interval, true }
}

// WithReadLimit sets the largest inbound message in bytes. Default
// 16 MiB (transport.DefaultReadLimit); positive. A longer message fails the connection
// with close code 1009 and the client reconnects.
func WithReadLimit(n int64) Option { return func(c *Config) { c.ReadLimit = n } }

// WithTLSConfig sets the TLS configuration for wss URLs. Certificates are
// verified by default (default nil: the system's roots); skipping verification takes an explicit
// InsecureSkipVerify in the config you pass.
func WithTLSConfig(t *tls.Config) Option { return func(c *Config) { c.TLSConfig = t } }

// WithInboundQueue bounds the messages waiting between the client and its
// handler or subscriber, in count (size, default 4096, at least 1) and in
// bytes (default 64 MiB, not negative); 0 keeps a default. The message being
// handled is not counted. policy (default DropNewest) says what happens to
// a message that finds size messages waiting, or that would pass the byte
// bound: DropNewest drops it, DropOldest drops older messages to make room;
// either way counted in Health.InboundDropped. A single message larger than
// bytes (up to the read limit) is still queued when no other message
// waits, so nothing that can be read is undeliverable.
func WithInboundQueue(size int, bytes int64, policy OverflowPolicy) Option {
	return func(c *Config) {
		if size != 0 {
			c.InboundQueueSize = size
		}
		c.InboundQueueBytes, c.Overflow = bytes, policy
	}
}

// WithLogger sets the zap logger. Default: no logging. Secrets (header
// values, URL query values) are never logged.
func WithLogger(l *zap.Logger) Option { return func(c *Config) { c.Logger = l } }

// WithHandler delivers inbound messages to fn, in order, on a goroutine of
// the client's (never the actor's own). A panic in fn is logged and counted;
// the connection stays up. Default none; not together with WithSubscriber.
func WithHandler(fn func(Inbound)) Option { return func(c *Config) { c.Handler = fn } }

// WithSubscriber delivers inbound messages to an actor as *Inbound, in order.
// The client's queue bound and overflow policy cover what waits inside the
// client; the subscriber's own mailbox is Proto.Actor's and unbounded by
// default, so a subscriber slower than the stream grows it. For a hard
// bound, use WithHandler, or give the subscriber a bounded mailbox
// (actor.WithMailbox(actor.Bounded(n))): the delivery goroutine then waits
// when it is full and the client's overflow policy takes over. Default
// none; not together with WithHandler.
func WithSubscriber(pid *actor.PID) Option { return func(c *Config) { c.Subscriber = pid } }

// WithOnConnect runs fn after every successful connection: the first, every
// reconnect and every connection after a restart. It runs in order with
// inbound deliveries, on the handler goroutine; a panic is logged. Default
// none.
func WithOnConnect(fn func(*actor.PID)) Option { return func(c *Config) { c.OnConnect = fn } }

// WithOnDisconnect runs fn once when the client stops for good (Close, a
// fatal error, giving up without a supervisor to restart it), after the
// handler call in progress (inbound messages still queued are dropped and
// counted) and, for Close, before Close returns; see Client.Close for a
// handler that does not return. Lost
// connections that the client heals are not disconnects in this sense;
// watch State, Health or Inbound.Generation for those. Default none.
func WithOnDisconnect(fn func(*actor.PID)) Option {
	return func(c *Config) { c.OnDisconnect = fn }
}

// WithStateObserver calls fn on every state change, in order, with the
// exact generation of the change: for metrics, events and balancers. The
// changes form one chain, across supervisor restarts too: each From is the
// previous To, the first is From StateDisconnected To StateConnecting and
// the last To StateDisconnected (unless the queue below dropped some). fn runs
// on a goroutine of the client's, never the actor's own, so a slow or stuck
// fn cannot stall the connection: at most 256 changes wait
// for it, and when that many wait the oldest is dropped, counted
// (Health.ObserverDropped) and logged. A panic in fn is logged and
// swallowed. fn should not call Close: Close waits for fn to return (up to
// CloseWait). For user work prefer WithOnConnect and WithOnDisconnect.
// Default none.
func WithStateObserver(fn func(StateChange)) Option {
	return func(c *Config) { c.StateObserver = fn }
}

func (cfg Config) transportOptions(onPing func([]byte)) transport.Options {
	return transport.Options{
		Header:           cfg.Headers,
		HandshakeTimeout: cfg.Timeout,
		Subprotocols:     cfg.Subprotocols,
		Secrets:          cfg.Secrets,
		TLSConfig:        cfg.TLSConfig,
		ReadLimit:        cfg.ReadLimit,
		WriteTimeout:     cfg.WriteTimeout,
		OnPingReceived:   onPing,
		NetDial:          safeNetDial(cfg.NetDial), // a panic in it is a failed dial
		FollowRedirects:  cfg.FollowRedirects,
		RedirectHosts:    cfg.RedirectHosts,
		MessageTimeout:   cfg.MessageTimeout,
		MaxFragments:     cfg.MaxFragments,
	}
}
