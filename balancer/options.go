package balancer

import (
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Defaults.
const (
	DefaultMaxAttempts       = 3
	DefaultDiscoveryInterval = 5 * time.Second
	// DefaultStartWait bounds how long New waits for the first discovery
	// (WithStartWait).
	DefaultStartWait = 5 * time.Second
	// DefaultStopWait bounds how long Stop waits for the router actor
	// (WithStopWait).
	DefaultStopWait = 5 * time.Second
)

// Option configures a balancer: it is given to New or Props and read when
// the balancer starts. One operation's options are CallOptions, a type of
// their own, so that a balancer's option given to Send does not compile
// instead of being ignored.
type Option func(*options)

// CallOption configures one operation (Send, Request, Call,
// Supervisor.SendBalanced): RetrySafe, CallMaxAttempts.
type CallOption func(*callOptions)

// callOptions are one operation's settings, starting from the balancer's.
type callOptions struct {
	attempts int
	safe     bool // this operation is retry-safe
}

type options struct {
	discovery func() []*actor.PID
	interval  time.Duration
	attempts  int
	strategy  Strategy
	retrySafe func(method string) bool
	resolve   func(pid *actor.PID) (Endpoint, bool)
	logger    *zap.Logger
	meters    metric.MeterProvider
	startWait time.Duration
	stopWait  time.Duration
}

func newOptions(opts []Option) options {
	o := options{
		interval:  DefaultDiscoveryInterval,
		attempts:  DefaultMaxAttempts,
		strategy:  PeakEWMA,
		retrySafe: PublicMethods,
		logger:    zap.NewNop(),
		startWait: DefaultStartWait,
		stopWait:  DefaultStopWait,
	}
	o.apply(opts)
	return o
}

func (o *options) apply(opts []Option) {
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
}

// WithDiscovery sets the function that lists the clients to balance over
// (for a supervisor's clients, Supervisor.ListClients). It is called when
// the balancer starts, every DiscoveryInterval, when a client it watches
// stops, and on Refresh; it runs off the router's goroutine.
func WithDiscovery(fn func() []*actor.PID) Option { return func(o *options) { o.discovery = fn } }

// WithDiscoveryInterval sets how often discovery is read again (default
// 5 s). Clients push their health as it changes; the interval only bounds
// how long a new client takes to join when nobody calls Refresh.
func WithDiscoveryInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithMaxAttempts sets how many clients an operation tries before it
// fails with ErrMaxAttempts (default 3). CallMaxAttempts sets it for one
// operation.
func WithMaxAttempts(n int) Option { return func(o *options) { o.attempts = n } }

// CallMaxAttempts sets how many clients this operation tries before it
// fails with ErrMaxAttempts, instead of the balancer's WithMaxAttempts.
// Less than 1 fails the operation with an *actors.ConfigError, nothing
// sent.
func CallMaxAttempts(n int) CallOption { return func(o *callOptions) { o.attempts = n } }

// WithStartWait bounds how long New waits for the first discovery to be in
// the table (default 5 s; 0: do not wait). When the bound passes first, New
// returns the balancer all the same and the table fills in when discovery
// answers; Refresh waits for it under a ctx.
func WithStartWait(d time.Duration) Option { return func(o *options) { o.startWait = d } }

// WithStopWait bounds how long Stop waits for the router actor to stop
// (default 5 s); past it Stop returns an error matching actors.ErrTimeout.
func WithStopWait(d time.Duration) Option { return func(o *options) { o.stopWait = d } }

// WithStrategy chooses how a client is picked: PeakEWMA (default) or
// HealthScore.
func WithStrategy(s Strategy) Option { return func(o *options) { o.strategy = s } }

// WithRetrySafeMethods sets the rule that marks a JSON-RPC method as safe
// to send again on another connection after a failure that may have
// reached the server (default PublicMethods). Use a rule that never says
// yes for methods that change state: an order sent twice is two orders.
func WithRetrySafeMethods(rule func(method string) bool) Option {
	return func(o *options) { o.retrySafe = rule }
}

// RetrySafe marks one operation as safe to repeat: after a failure that may
// have reached the server (ErrDisconnected, ErrTimeout) it is tried on
// another client. Without it, only failures that provably sent nothing are
// retried.
func RetrySafe() CallOption { return func(o *callOptions) { o.safe = true } }

// WithResolver lets the balancer use clients that are not local actors
// (package balancer/cluster provides one): for a PID that is no local zenws
// client (actors.NewClient's Done is nil), resolve returns the endpoint to send through.
func WithResolver(resolve func(pid *actor.PID) (Endpoint, bool)) Option {
	return func(o *options) { o.resolve = resolve }
}

// WithLogger sets the balancer's logger (default: none).
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// PublicMethods is the default retry-safe rule: Deribit's public/* methods
// read market data and change nothing.
func PublicMethods(method string) bool { return strings.HasPrefix(method, "public/") }
