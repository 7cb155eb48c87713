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
	DefaultTimeout           = 5 * time.Second  // connect + handshake
	DefaultRetryCount        = 3                // reconnect attempts before giving up
	DefaultRetryDelay        = time.Second      // first backoff's upper bound
	DefaultMaxBackoff        = 30 * time.Second // backoff cap
	DefaultRequestTimeout    = 30 * time.Second
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultHeartbeatMisses   = 2
	DefaultLatencyBuffer     = 100
	MaxLatencyBuffer         = 1 << 16 // samples; the ring is allocated whole on the first one
	DefaultInboundQueue      = 4096
	DefaultCloseWait         = 5 * time.Second
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
// the zero value is not valid.
type Config struct {
	URL                  string
	Headers              http.Header
	Timeout              time.Duration // connect + handshake
	RetryCount           int           // reconnect attempts after a drop before giving up; RetryForever: no limit
	RetryDelay           time.Duration // backoff base: attempt k waits U[0, min(MaxBackoff, RetryDelay*2^(k-1))]
	MaxBackoff           time.Duration
	ReconnectOnError     bool
	RestoreSubscriptions bool
	RequestTimeout       time.Duration
	Heartbeat            HeartbeatType
	HeartbeatInterval    time.Duration
	HeartbeatMisses      int           // unanswered heartbeats in a row before reconnecting
	ServerPingWindow     time.Duration // HeartbeatBinance: longest silence between server pings
	ReadLimit            int64
	WriteTimeout         time.Duration
	Subprotocols         []string
	TLSConfig            *tls.Config
	NetDial              func(ctx context.Context, network, addr string) (net.Conn, error)
	LatencyBufferSize    int
	InboundQueueSize     int
	Overflow             OverflowPolicy
	CloseWait            time.Duration // how long Close waits for the actor and its goroutines
	Logger               *zap.Logger
	Handler              func(Inbound)
	Subscriber           *actor.PID
	OnConnect            func(*actor.PID)
	OnDisconnect         func(*actor.PID)
	StateObserver        func(StateChange)
	Dialect              Dialect     // subscriptions; nil: the venue's, else Deribit's
	Venue                venue.Venue // a venue's protocol knowledge (WithVenue); nil: none
	rateLimiterSet       bool        // WithRateLimiter was given: the venue's limiter is not used
	heartbeatSet         bool        // WithHeartbeat was given: the venue's heartbeat is not used
	secretFields         []string    // the venue's own secret member names (venue.Redactor), set per client
	Recorder             io.Writer   // session recording (JSONL); nil: none
	RecordFile           string      // or a file to record to
	OnRestoreFailed      func(client *actor.PID, channels []string, err error)
	RateLimiter          *ratelimit.Limiter   // outbound frames; nil: none
	RatePolicy           RatePolicy           // for the user's own traffic
	DialLimiter          *ratelimit.Limiter   // connection attempts; nil: none
	ConnectHooks         []ConnectHook        // run on every new connection, before the restore
	MaxConnectionAge     time.Duration        // rotate before a connection is this old; 0: never
	MeterProvider        metric.MeterProvider // OpenTelemetry metrics; nil: off

	// Handshake redirects and frame-level bounds (transport; see
	// redirect.go and protocol.go).
	FollowRedirects int           // 3xx answers followed on the origin; 0 (default): none
	RedirectHosts   []string      // other hosts a followed redirect may reach (without credentials)
	MessageTimeout  time.Duration // a message's first byte to its last; 0: transport.DefaultMessageTimeout
	MaxFragments    int           // frames per message; 0: transport.DefaultMaxFragments

	// Bounds (inbound.go).
	InboundQueueBytes int64 // bytes of messages waiting for the handler; 0: DefaultInboundQueueBytes

	// Life cycle (lifecycle.go).
	StableAfter   time.Duration // a connection up this long was stable: its loss redials at once
	HostDialRate  float64       // dials a second per host shared by an actor system's clients; 0: off
	HostDialBurst int           // dials at once per host before the rate applies

	// Secrets and recording bounds (issue 12; secrets.go, record.go).
	Secrets          []string // values hidden from logs, errors, Health and recordings (WithSecrets)
	RecordQueue      int      // recorded frames waiting for the writer; 0: DefaultRecordQueue
	RecordQueueBytes int64    // and their bytes; 0: DefaultRecordQueueBytes

	// Operator's view (issue 13, label.go).
	Label string // names the client in Health and its log lines (WithLabel); "" by default
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

// ErrInvalidConfig matches every *ConfigError.
var ErrInvalidConfig = errors.New("zenws: invalid config")

// ConfigError names the field that is wrong and why.
type ConfigError struct {
	Field   string
	Problem string
}

// Error implements the error interface.
func (e *ConfigError) Error() string { return "zenws: invalid config: " + e.Field + ": " + e.Problem }

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// NewConfig applies opts over the defaults and validates the result. All
// problems are reported, each as a *ConfigError naming its field, joined
// with errors.Join.
func NewConfig(url string, opts ...Option) (Config, error) {
	cfg := Config{
		URL:                  url,
		Timeout:              DefaultTimeout,
		RetryCount:           DefaultRetryCount,
		RetryDelay:           DefaultRetryDelay,
		MaxBackoff:           DefaultMaxBackoff,
		ReconnectOnError:     true,
		RestoreSubscriptions: true,
		RequestTimeout:       DefaultRequestTimeout,
		HeartbeatInterval:    DefaultHeartbeatInterval,
		HeartbeatMisses:      DefaultHeartbeatMisses,
		ReadLimit:            transport.DefaultReadLimit,
		WriteTimeout:         transport.DefaultWriteTimeout,
		LatencyBufferSize:    DefaultLatencyBuffer,
		InboundQueueSize:     DefaultInboundQueue,
		CloseWait:            DefaultCloseWait,
		Heartbeat:            HeartbeatPingPong, // decided: a dead connection is detected by default
		StableAfter:          DefaultStableAfter,
		HostDialRate:         DefaultHostDialRate,
		HostDialBurst:        DefaultHostDialBurst,
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
		cfg.Logger = zap.NewNop()
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
	if nilVenue(cfg.Venue) {
		bad("Venue", fmt.Sprintf("a nil %T (did its constructor return an error?)", cfg.Venue))
	}
	if cfg.HeartbeatMisses < 1 {
		bad("HeartbeatMisses", fmt.Sprintf("must be at least 1, got %d", cfg.HeartbeatMisses))
	}
	if cfg.ReadLimit <= 0 {
		bad("ReadLimit", fmt.Sprintf("must be positive, got %d", cfg.ReadLimit))
	}
	if cfg.LatencyBufferSize < 1 || cfg.LatencyBufferSize > MaxLatencyBuffer {
		bad("LatencyBufferSize", fmt.Sprintf("must be in [1, %d], got %d", MaxLatencyBuffer, cfg.LatencyBufferSize))
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
	// Redirects and frame-level bounds (redirect.go, protocol.go).
	if cfg.FollowRedirects < 0 || cfg.FollowRedirects > transport.MaxFollowRedirects {
		bad("FollowRedirects", fmt.Sprintf("must be in [0, %d], got %d", transport.MaxFollowRedirects, cfg.FollowRedirects))
	}
	if cfg.MessageTimeout != 0 && cfg.MessageTimeout < MinMessageTimeout {
		bad("MessageTimeout", fmt.Sprintf("must be 0 (default %v) or at least %v, got %v", transport.DefaultMessageTimeout, MinMessageTimeout, cfg.MessageTimeout))
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
	cfg.validateLabel(bad) // label.go
	return errors.Join(errs...)
}

// WithHeaders sets headers sent with the upgrade request. Values are never
// logged.
func WithHeaders(h http.Header) Option { return func(c *Config) { c.Headers = h.Clone() } }

// WithTimeout bounds connect and handshake. Default 5 s; at least
// MinTimeout (10 ms).
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
// 1 s; at least MinRetryDelay (1 ms). The attempt count starts anew only
// after a connection stayed up for StableAfter (see WithStableAfter), and
// the first redial after losing such a connection does not wait.
func WithRetryDelay(d time.Duration) Option { return func(c *Config) { c.RetryDelay = d } }

// WithMaxBackoff caps the backoff. Default 30 s; must be >= RetryDelay.
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
// at least MinRequestTimeout (1 ms); a caller's context can only shorten it.
func WithRequestTimeout(d time.Duration) Option { return func(c *Config) { c.RequestTimeout = d } }

// WithHeartbeat selects the heartbeat kind and its interval. Default
// HeartbeatPingPong every 30 s (DefaultHeartbeatInterval) with 2 misses
// allowed (DefaultHeartbeatMisses), so that a dead connection is found by
// default; WithHeartbeat(HeartbeatDisabled, 0) turns heartbeats off. The
// interval must be at least MinHeartbeatInterval (10 ms) unless disabled.
// See HeartbeatType for what each kind does.
func WithHeartbeat(t HeartbeatType, interval time.Duration) Option {
	return func(c *Config) { c.Heartbeat, c.HeartbeatInterval, c.heartbeatSet = t, interval, true }
}

// WithHeartbeatMisses sets how many heartbeats in a row may go unanswered
// before the client reconnects. Default 2.
func WithHeartbeatMisses(n int) Option { return func(c *Config) { c.HeartbeatMisses = n } }

// WithServerPingWindow sets, for HeartbeatBinance, the longest time without
// a server ping before the client reconnects. Default 3 heartbeat intervals
// (60 s for Binance's 20 s pings, Binance's own pong deadline).
func WithServerPingWindow(d time.Duration) Option {
	return func(c *Config) { c.ServerPingWindow = d }
}

// WithReadLimit sets the largest inbound message in bytes. Default
// transport.DefaultReadLimit (16 MiB). A longer message fails the connection
// with close code 1009 and the client reconnects.
func WithReadLimit(n int64) Option { return func(c *Config) { c.ReadLimit = n } }

// WithWriteTimeout bounds each write. Default 10 s, at least
// MinWriteTimeout (10 ms); a write that takes
// longer means the peer is stalled, and the connection is closed and
// re-dialled.
func WithWriteTimeout(d time.Duration) Option { return func(c *Config) { c.WriteTimeout = d } }

// WithSubprotocols offers WebSocket subprotocols in the handshake.
func WithSubprotocols(protos ...string) Option {
	return func(c *Config) { c.Subprotocols = append([]string(nil), protos...) }
}

// WithTLSConfig sets the TLS configuration for wss URLs. Certificates are
// verified by default; skipping verification takes an explicit
// InsecureSkipVerify in the config you pass.
func WithTLSConfig(t *tls.Config) Option { return func(c *Config) { c.TLSConfig = t } }

// WithNetDial sets the function that opens TCP connections (a custom
// resolver, socket options, a SOCKS dialer). Default: a net.Dialer with 15 s
// keep-alive.
func WithNetDial(fn func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *Config) { c.NetDial = fn }
}

// WithLatencyBufferSize sets how many round-trip samples Health's p50/p99
// are computed over. Default 100, at most MaxLatencyBuffer (65,536).
func WithLatencyBufferSize(n int) Option { return func(c *Config) { c.LatencyBufferSize = n } }

// WithInboundQueue sets how many messages may wait between the client and
// its handler or subscriber (default 4096; the one being handled is not
// counted) and what happens when that many wait, or when their bytes would
// pass WithInboundQueueBytes (default DropNewest).
func WithInboundQueue(size int, policy OverflowPolicy) Option {
	return func(c *Config) { c.InboundQueueSize, c.Overflow = size, policy }
}

// WithCloseWait bounds how long Close waits for the client to stop and its
// goroutines (reader, handler) to end. Default 5 s; at least MinCloseWait
// (1 ms).
func WithCloseWait(d time.Duration) Option { return func(c *Config) { c.CloseWait = d } }

// WithLogger sets the zap logger. Default: no logging. Secrets (header
// values, URL query values) are never logged.
func WithLogger(l *zap.Logger) Option { return func(c *Config) { c.Logger = l } }

// WithHandler delivers inbound messages to fn, in order, on a goroutine of
// the client's (never the actor's own). A panic in fn is logged and counted;
// the connection stays up.
func WithHandler(fn func(Inbound)) Option { return func(c *Config) { c.Handler = fn } }

// WithSubscriber delivers inbound messages to an actor as *Inbound, in order.
// The client's queue bound and overflow policy cover what waits inside the
// client; the subscriber's own mailbox is Proto.Actor's and unbounded by
// default, so a subscriber slower than the stream grows it. For a hard
// bound, use WithHandler, or give the subscriber a bounded mailbox
// (actor.WithMailbox(actor.Bounded(n))): the delivery goroutine then waits
// when it is full and the client's overflow policy takes over.
func WithSubscriber(pid *actor.PID) Option { return func(c *Config) { c.Subscriber = pid } }

// WithOnConnect runs fn after every successful connection: the first, every
// reconnect and every connection after a restart. It runs in order with
// inbound deliveries, on the handler goroutine; a panic is logged.
func WithOnConnect(fn func(*actor.PID)) Option { return func(c *Config) { c.OnConnect = fn } }

// WithOnDisconnect runs fn once when the client stops for good (Close, a
// fatal error, giving up without a supervisor to restart it), after the
// handler call in progress (inbound messages still queued are dropped and
// counted) and, for Close, before Close returns; see Client.Close for a
// handler that does not return. Lost
// connections that the client heals are not disconnects in this sense;
// watch State, Health or Inbound.Generation for those.
func WithOnDisconnect(fn func(*actor.PID)) Option {
	return func(c *Config) { c.OnDisconnect = fn }
}

// WithStateObserver calls fn on every state change, in order, with the
// exact generation of the change: for metrics, events and balancers. The
// changes form one chain, across supervisor restarts too: each From is the
// previous To, the first is From StateDisconnected To StateConnecting and
// the last To StateDisconnected (unless the queue below dropped some). fn runs
// on a goroutine of the client's, never the actor's own, so a slow or stuck
// fn cannot stall the connection: at most DefaultObserverQueue changes wait
// for it, and when that many wait the oldest is dropped, counted
// (Health.ObserverDropped) and logged. A panic in fn is logged and
// swallowed. fn should not call Close: Close waits for fn to return (up to
// CloseWait). For user work prefer WithOnConnect and WithOnDisconnect.
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
