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
)

// Option configures a balancer (New, Props) or, given to one operation
// (Send, Request, Call, Supervisor.SendBalanced), that operation only:
// WithMaxAttempts and RetrySafe apply per operation; the others are
// read when the balancer starts.
type Option func(*options)

type options struct {
	discovery func() []*actor.PID
	interval  time.Duration
	attempts  int
	strategy  Strategy
	retrySafe func(method string) bool
	safe      bool // this operation is retry-safe
	resolve   func(pid *actor.PID) (Endpoint, bool)
	logger    *zap.Logger
	meters    metric.MeterProvider
}

func newOptions(opts []Option) options {
	o := options{
		interval:  DefaultDiscoveryInterval,
		attempts:  DefaultMaxAttempts,
		strategy:  PeakEWMA,
		retrySafe: PublicMethods,
		logger:    zap.NewNop(),
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
// fails with ErrMaxAttempts (default 3).
func WithMaxAttempts(n int) Option { return func(o *options) { o.attempts = n } }

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
func RetrySafe() Option { return func(o *options) { o.safe = true } }

// WithResolver lets the balancer use clients that are not local actors
// (package balancer/cluster provides one): for a PID that actors.Lookup does
// not know, resolve returns the endpoint to send through.
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
