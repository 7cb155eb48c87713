package feed

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
)

// Defaults and bounds.
const (
	// DefaultCopies is how many clients hold each channel.
	DefaultCopies = 2
	// MaxCopies bounds WithCopies.
	MaxCopies = 8
	// DefaultWindow is how many updates of one channel are remembered for
	// de-duplication by content, and how many out-of-order updates of one
	// channel are held while another copy may fill a hole.
	DefaultWindow = 1024
	// MaxWindow bounds WithWindow.
	MaxWindow = 1 << 16
	// DefaultQueue is how many deliveries (updates, gap notices, events)
	// wait for the pool's handler.
	DefaultQueue = 1 << 16
	// DefaultMaxChannels is how many channels one pool holds.
	DefaultMaxChannels = 1 << 16
	// DefaultDiscoveryInterval is how often discovery is read again.
	DefaultDiscoveryInterval = time.Second
	// DefaultRequestTimeout bounds each Subscribe and Unsubscribe the pool
	// makes on a client.
	DefaultRequestTimeout = 30 * time.Second
)

// Option configures a Pool (New).
type Option func(*options)

type options struct {
	discovery   func() []*actor.PID
	interval    time.Duration
	copies      int
	maxStreams  int
	seq         venue.Sequencer
	handler     func(actors.Inbound)
	subscriber  *actor.PID
	observer    func(Event)
	window      int
	queue       int
	maxChannels int
	timeout     time.Duration
	log         *zap.Logger
}

func newOptions(opts []Option) options {
	o := options{
		interval: DefaultDiscoveryInterval, copies: DefaultCopies, window: DefaultWindow,
		queue: DefaultQueue, maxChannels: DefaultMaxChannels, timeout: DefaultRequestTimeout, log: zap.NewNop(),
	}
	for _, fn := range opts {
		if fn != nil {
			fn(&o)
		}
	}
	return o
}

func (o options) validate() error {
	bad := func(field, format string, args ...any) error {
		return &actors.ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	switch {
	case o.discovery == nil:
		return bad("Discovery", "none set")
	case o.interval <= 0:
		return bad("DiscoveryInterval", "must be positive, got %v", o.interval)
	case o.copies < 1 || o.copies > MaxCopies:
		return bad("Copies", "must be 1 to %d, got %d", MaxCopies, o.copies)
	case o.window < 1 || o.window > MaxWindow:
		return bad("Window", "must be 1 to %d, got %d", MaxWindow, o.window)
	case o.queue < 1:
		return bad("Queue", "must be at least 1, got %d", o.queue)
	case o.maxChannels < 1:
		return bad("MaxChannels", "must be at least 1, got %d", o.maxChannels)
	case o.timeout <= 0:
		return bad("RequestTimeout", "must be positive, got %v", o.timeout)
	case o.maxStreams < 0:
		return bad("MaxStreams", "must not be negative, got %d", o.maxStreams)
	case o.handler != nil && o.subscriber != nil:
		return bad("Handler", "not together with a subscriber")
	}
	return nil
}

// WithDiscovery sets the function that lists the pool's clients
// (required; a supervisor's ListClients). It is read on the pool's actor,
// at start, every WithDiscoveryInterval and on Refresh; it must be fast.
// Each client must deliver to the pool: actors.WithSubscriber(p.PID()) or
// actors.WithHandler(p.Handler()).
func WithDiscovery(fn func() []*actor.PID) Option { return func(o *options) { o.discovery = fn } }

// WithDiscoveryInterval sets how often discovery is read again (default
// 1 s).
func WithDiscoveryInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithCopies sets on how many distinct clients each channel is held: 1
// shards channels over the pool, 2 or more makes each a redundant feed
// (default 2, at most 8). With fewer clients than k, a channel is held on
// every client and shows as under-replicated (ChannelStatus.Copies).
func WithCopies(k int) Option { return func(o *options) { o.copies = k } }

// WithVenue takes from v what the pool uses: its per-connection stream
// limit (venue.StreamLimited) and its sequence rule (venue.Sequencer),
// unless WithMaxStreams or WithSequencer set them.
func WithVenue(v venue.Venue) Option {
	return func(o *options) {
		if l, ok := v.(venue.StreamLimited); ok && o.maxStreams == 0 {
			o.maxStreams = l.MaxStreams()
		}
		if s, ok := v.(venue.Sequencer); ok && o.seq == nil {
			o.seq = s
		}
	}
}

// WithMaxStreams sets how many channel copies one client holds at most
// (default: the venue's, WithVenue; 0: no limit).
func WithMaxStreams(n int) Option { return func(o *options) { o.maxStreams = n } }

// WithSequencer sets how a channel's sequence numbers are read (default:
// the venue's, WithVenue). Channels it does not read are de-duplicated by
// content.
func WithSequencer(s venue.Sequencer) Option { return func(o *options) { o.seq = s } }

// WithHandler delivers each update once to fn, in order, on a goroutine of
// the pool's (never its actor's). At most WithQueue deliveries wait for
// it; past that the newest is dropped and counted (Status.Dropped) and
// Inbound.Seq jumps. A panic in fn is recovered and counted. Default none;
// not together with WithSubscriber.
func WithHandler(fn func(actors.Inbound)) Option { return func(o *options) { o.handler = fn } }

// WithSubscriber delivers each update once to an actor as *actors.Inbound,
// and events as *Event, in order (its mailbox is Proto.Actor's: unbounded
// unless the actor was given a bounded one).
func WithSubscriber(pid *actor.PID) Option { return func(o *options) { o.subscriber = pid } }

// WithObserver calls fn with every Event (a copy lost, moved, placed; a
// gap), in order with the updates, on the handler's goroutine. Default
// none.
func WithObserver(fn func(Event)) Option { return func(o *options) { o.observer = fn } }

// WithWindow bounds, per channel, the updates remembered for
// de-duplication by content and the updates held out of order while
// another copy may fill a hole (default 1024, at most 65,536). A copy that
// lags further behind than the window is no longer recognised as a
// duplicate (see docs/balancing.md).
func WithWindow(n int) Option { return func(o *options) { o.window = n } }

// WithQueue bounds the deliveries waiting for the handler (default
// 65,536).
func WithQueue(n int) Option { return func(o *options) { o.queue = n } }

// WithMaxChannels bounds the channels the pool holds (default 65,536);
// Subscribe refuses more with a *CapacityError.
func WithMaxChannels(n int) Option { return func(o *options) { o.maxChannels = n } }

// WithRequestTimeout bounds each Subscribe and Unsubscribe the pool makes
// on one client (default 30 s; the client's own RequestTimeout applies too).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithLogger sets the pool's logger (default none).
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}
