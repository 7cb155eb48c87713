package cluster

import (
	"fmt"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"

	"go.uber.org/zap"
)

// Defaults.
const (
	// DefaultSyncInterval: how often the agent reads its local discovery
	// again, and asks again the members that had no agent, when nothing
	// told it to.
	DefaultSyncInterval = time.Second
	// DefaultFlushInterval: how long a health change that does not change
	// whether a client may be picked (pending, round trips) waits to be sent
	// to subscribers, batched with others. A change of state, connection
	// generation or heartbeat failures is sent at once.
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultMaxInFlight bounds the operations an agent runs for other nodes
	// at once; past it an operation is refused (ErrRateLimited on the
	// caller's node, nothing sent) and counted.
	DefaultMaxInFlight = 4096
	// DefaultRequestTimeout bounds a remote operation whose context has no
	// deadline.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultStopWait bounds how long Stop waits for operations in flight.
	DefaultStopWait = 5 * time.Second
	// DefaultSilenceTimeout: how long a member in use may stay silent
	// before it is treated as lost (see WithSilenceTimeout); three
	// SyncIntervals where that is longer.
	DefaultSilenceTimeout = 3 * time.Second
)

// AgentName is the name of the agent actor: one per actor system.
const AgentName = "zenws-balancer-agent"

// Option configures an agent.
type Option func(*options)

type options struct {
	sync        time.Duration
	flush       time.Duration
	maxInFlight int
	timeout     time.Duration
	stopWait    time.Duration
	silence     time.Duration
	logger      *zap.Logger
	members     func() []*protocluster.Member
}

func newOptions(opts []Option) options {
	o := options{
		sync:        DefaultSyncInterval,
		flush:       DefaultFlushInterval,
		maxInFlight: DefaultMaxInFlight,
		timeout:     DefaultRequestTimeout,
		stopWait:    DefaultStopWait,
		logger:      zap.NewNop(),
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.silence == 0 && o.sync > 0 {
		o.silence = max(DefaultSilenceTimeout, 3*o.sync)
	}
	return o
}

func (o options) validate() error {
	switch {
	case o.sync <= 0:
		return fmt.Errorf("zenws/balancer/cluster: SyncInterval must be positive, got %v", o.sync)
	case o.flush <= 0:
		return fmt.Errorf("zenws/balancer/cluster: FlushInterval must be positive, got %v", o.flush)
	case o.maxInFlight < 1:
		return fmt.Errorf("zenws/balancer/cluster: MaxInFlight must be at least 1, got %d", o.maxInFlight)
	case o.timeout <= 0:
		return fmt.Errorf("zenws/balancer/cluster: RequestTimeout must be positive, got %v", o.timeout)
	case o.stopWait <= 0:
		return fmt.Errorf("zenws/balancer/cluster: StopWait must be positive, got %v", o.stopWait)
	case o.silence < 2*o.sync:
		return fmt.Errorf("zenws/balancer/cluster: SilenceTimeout must be at least twice SyncInterval (%v), got %v", o.sync, o.silence)
	}
	return nil
}

// WithSyncInterval sets how often the agent reads its local discovery
// again and asks again the members that had no agent (default 1 s).
// Membership changes reach it as events at once, and an agent that starts
// subscribes to the others, which answers their question; call
// Agent.Invalidate when the local list changes.
func WithSyncInterval(d time.Duration) Option { return func(o *options) { o.sync = d } }

// WithFlushInterval sets how long a health change that does not affect
// eligibility waits before it is sent to other nodes (default 100 ms).
func WithFlushInterval(d time.Duration) Option { return func(o *options) { o.flush = d } }

// WithMaxInFlight bounds the operations the agent runs at once for other
// nodes (default 4096). Past it an operation is refused at once: the
// caller gets an error wrapping actors.ErrRateLimited (nothing was sent,
// the balancer tries another client) and Stats.Refused counts it.
func WithMaxInFlight(n int) Option { return func(o *options) { o.maxInFlight = n } }

// WithRequestTimeout bounds a remote operation whose context carries no
// deadline (default 30 s, the client's own default request timeout).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithStopWait bounds how long Stop waits for the operations in flight to
// be answered before it cancels them (default 5 s), and each of Stop's
// other waits (see Agent.Stop).
func WithStopWait(d time.Duration) Option { return func(o *options) { o.stopWait = d } }

// WithSilenceTimeout sets how long a member whose clients are in use may
// go without answering before it is treated as lost (default 3 s; at least
// twice SyncInterval, the agent asking every member in use once per
// SyncInterval; by default three SyncIntervals where that is longer than
// 3 s). A member frozen (SIGSTOP, a long GC or VM pause) or cut
// off by a network that drops its packets without a reset loses no
// connection that Proto.Actor's remote would notice: without this, the
// operations sent through its clients would wait for their deadlines.
// Treated as lost, its operations in flight fail with an error wrapping
// actors.ErrDisconnected (the balancer retries a retry-safe one elsewhere,
// never an order: it may still run there), its clients leave the tables,
// and it is asked again with backoff; Stats.Silent counts the times. Lower
// it to fail over sooner, at the risk of dropping a member that was only
// slow.
func WithSilenceTimeout(d time.Duration) Option { return func(o *options) { o.silence = d } }

// WithLogger sets the agent's logger (default: none).
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithMembers gives the agent the cluster's members as of its start (later
// changes reach it as topology events). Default: the cluster's
// MemberList, which this Proto.Actor version hands out without a lock: a
// data race when the provider changes the topology at that moment (the
// race detector reports it; the agent may start with a stale list, which
// the next event corrects). membership.Member.Members (package
// balancer/cluster/membership) records the topology events from before
// the member started and avoids it.
func WithMembers(fn func() []*protocluster.Member) Option {
	return func(o *options) { o.members = fn }
}

// Settings of Proto.Actor's remote for a pool across nodes (RemoteOptions).
const (
	// EndpointBatch is how many messages remote's endpoint writer puts in
	// one gRPC message (Proto.Actor's default is 1,000): with operations of
	// up to MaxWireMessage each, a batch then stays under MaxRemoteMessage.
	EndpointBatch = 8
	// MaxRemoteMessage is the largest gRPC message a node receives (gRPC's
	// default is 4 MiB): EndpointBatch operations or answers of
	// MaxWireMessage each, with room for their envelopes.
	MaxRemoteMessage = 32 << 20
)

// RemoteOptions are the settings of Proto.Actor's remote that a pool across
// nodes needs; membership.Configure applies them, and a remote.Config of
// your own needs them too (remote.Configure(host, port,
// cluster.RemoteOptions()...); they set the server options, so add any of
// your own after them as one WithServerOptions with both). Without them,
// Proto.Actor's endpoint writer batches up to 1,000 queued messages into
// one gRPC message, gRPC refuses any over 4 MiB, and a refusal cuts the
// link: two or three large operations in flight to one node at once, each
// under MaxWireMessage, lost the node (every operation in flight failed).
func RemoteOptions() []remote.ConfigOption {
	return []remote.ConfigOption{
		remote.WithEndpointWriterBatchSize(EndpointBatch),
		remote.WithServerOptions(grpc.MaxRecvMsgSize(MaxRemoteMessage)),
	}
}
