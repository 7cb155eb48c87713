package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
)

// stopWait bounds Stop's unsubscribes on the pool's clients.
const stopWait = 5 * time.Second

// Pool is a handle on a feed pool actor (see the package doc). Its methods
// are safe for concurrent use.
type Pool struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	o       options
	out     *output
	ops     *sync.WaitGroup // the pool's calls on its clients
	stopped chan struct{}
	once    sync.Once

	// queues runs the calls on each client in the order the pool made them
	// (by PID id, across the client leaving and joining discovery): a
	// Subscribe and the Unsubscribe after it must reach the client in that
	// order, or the client is left wanting a channel the pool gave up.
	qmu    sync.Mutex
	queues map[string]*opQueue
}

// opQueue is one client's calls, run in order by one goroutine while it has
// any (none while it is empty).
type opQueue struct {
	ops     []func()
	running bool
}

// enqueue runs op after the calls queued before it on client id.
func (p *Pool) enqueue(id string, op func()) {
	p.qmu.Lock()
	q := p.queues[id]
	if q == nil {
		q = &opQueue{}
		p.queues[id] = q
	}
	q.ops = append(q.ops, op)
	if q.running {
		p.qmu.Unlock()
		return
	}
	q.running = true
	p.qmu.Unlock()
	go func() {
		for {
			p.qmu.Lock()
			if len(q.ops) == 0 {
				q.running = false
				delete(p.queues, id) // an idle client keeps no queue
				p.qmu.Unlock()
				return
			}
			op := q.ops[0]
			q.ops[0] = nil
			q.ops = q.ops[1:]
			p.qmu.Unlock()
			op()
		}
	}()
}

// New spawns a pool actor on sys and returns its handle once it has read
// discovery once. Invalid options return an *actors.ConfigError naming the
// option.
func New(sys *actor.ActorSystem, opts ...Option) (*Pool, error) {
	if sys == nil {
		return nil, errors.New("zenws/feed: New: nil actor system")
	}
	o := newOptions(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	p := &Pool{sys: sys, o: o, ops: &sync.WaitGroup{}, stopped: make(chan struct{}), queues: map[string]*opQueue{}}
	p.out = newOutput(sys, o)
	a := newPoolActor(p)
	props := actor.PropsFromProducer(func() actor.Actor { return a }) // a restart keeps the pool's state
	pid, err := sys.Root.SpawnNamed(props, "zenws-feed"+sys.ProcessRegistry.NextId())
	if err != nil {
		p.out.close()
		return nil, fmt.Errorf("zenws/feed: spawn: %w", err)
	}
	p.pid = pid
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Refresh(ctx)
	return p, nil
}

// PID is the pool actor's PID: give it to the pool's clients with
// actors.WithSubscriber.
func (p *Pool) PID() *actor.PID { return p.pid }

// Handler returns a handler for the pool's clients (actors.WithHandler)
// that hands each message to the pool actor.
func (p *Pool) Handler() func(actors.Inbound) {
	return func(in actors.Inbound) { p.sys.Root.Send(p.pid, &in) }
}

// ask sends msg to the actor and waits for reply (or ctx, or Stop).
func ask[T any](ctx context.Context, p *Pool, msg any, reply chan T) (T, error) {
	var zero T
	if ctx == nil {
		return zero, actors.ErrNilContext
	}
	select {
	case <-p.stopped:
		return zero, ErrStopped
	default:
	}
	p.sys.Root.Send(p.pid, msg)
	select {
	case v := <-reply:
		return v, nil
	case <-p.stopped:
		return zero, ErrStopped
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}

// Subscribe adds channels to the pool: each is placed at once on Copies
// distinct clients (connected ones first, the least loaded first, never
// more than MaxStreams on one) and subscribed there (Client.Subscribe:
// intent). It returns once every channel placed has a copy the venue
// confirmed or refused (the refusal is returned, an *actors.RPCError or
// *actors.PartialError; the channel stays wanted and its clients ask again
// with backoff), or ctx ends (an error wrapping its cause; the channels
// stay wanted). A *CapacityError names the channels no client had room for:
// they are not wanted. Channels the pool holds already are left as they
// are.
func (p *Pool) Subscribe(ctx context.Context, channels ...string) error {
	for _, ch := range channels {
		if ch == "" {
			// The clients refuse it too (a name has 1 to 1,024 bytes): say
			// so here rather than hold nothing and return nil.
			return fmt.Errorf("zenws/feed: Subscribe: %w: an empty channel name", actors.ErrInvalidRequest)
		}
	}
	reply := make(chan subscribed, 1)
	res, err := ask(ctx, p, &subscribeReq{channels: channels, reply: reply}, reply)
	if err != nil {
		return fmt.Errorf("zenws/feed: Subscribe: %w", err)
	}
	if res.wait != nil {
		select {
		case <-res.wait.done:
			if len(res.wait.errs) > 0 {
				return errors.Join(append([]error{res.err}, res.wait.errs...)...)
			}
		case <-p.stopped:
			return ErrStopped
		case <-ctx.Done():
			p.sys.Root.Send(p.pid, &cancelWait{w: res.wait})
			err := fmt.Errorf("zenws/feed: Subscribe: not every channel confirmed yet (still wanted): %w", context.Cause(ctx))
			if res.err != nil {
				return errors.Join(res.err, err)
			}
			return err
		}
	}
	if res.err != nil {
		return res.err
	}
	return nil
}

// Unsubscribe removes channels from the pool at once (nothing more of them
// is delivered) and waits until every client holding a copy has answered
// its unsubscribe, or ctx ends.
func (p *Pool) Unsubscribe(ctx context.Context, channels ...string) error {
	reply := make(chan *waiter, 1)
	w, err := ask(ctx, p, &unsubscribeReq{channels: channels, reply: reply}, reply)
	if err != nil {
		return fmt.Errorf("zenws/feed: Unsubscribe: %w", err)
	}
	select {
	case <-w.done:
		return nil
	case <-p.stopped:
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("zenws/feed: Unsubscribe: %w", context.Cause(ctx))
	}
}

// Status returns the pool as its actor sees it now (ErrStopped after Stop).
func (p *Pool) Status(ctx context.Context) (Status, error) {
	reply := make(chan Status, 1)
	return ask(ctx, p, &statusReq{reply: reply}, reply)
}

// Refresh reads discovery again now and returns once the pool's table
// reflects it.
func (p *Pool) Refresh(ctx context.Context) error {
	reply := make(chan struct{}, 1)
	_, err := ask(ctx, p, &refreshReq{reply: reply}, reply)
	return err
}

// waitOps waits, at most d, until the calls on clients in flight have
// ended.
func (p *Pool) waitOps(d time.Duration) {
	done := make(chan struct{})
	go func() { p.ops.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Stop unsubscribes the pool's channels on its clients (waiting at most
// 5 s), stops the pool actor and the handler's goroutine (after the
// deliveries queued). Later calls return ErrStopped.
func (p *Pool) Stop() error {
	err := ErrStopped
	p.once.Do(func() {
		err = nil
		ctx, cancel := context.WithTimeout(context.Background(), stopWait)
		defer cancel()
		reply := make(chan struct{}, 1)
		if _, e := ask(ctx, p, &stopReq{reply: reply}, reply); e == nil {
			done := make(chan struct{})
			go func() { p.ops.Wait(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				err = fmt.Errorf("zenws/feed: Stop: unsubscribes still running after %v: %w", stopWait, actors.ErrTimeout)
			}
		}
		close(p.stopped)
		if e := p.sys.Root.StopFuture(p.pid).Wait(); e != nil && err == nil {
			err = fmt.Errorf("zenws/feed: Stop: %w", e)
		}
		p.ops.Wait()
		p.out.close()
	})
	return err
}

type (
	subscribeReq struct {
		channels []string
		reply    chan subscribed
	}
	subscribed struct {
		wait *waiter // nil: nothing to wait for
		err  error
	}
	unsubscribeReq struct {
		channels []string
		reply    chan *waiter
	}
	cancelWait struct{ w *waiter }
	statusReq  struct{ reply chan Status }
	refreshReq struct{ reply chan struct{} }
	stopReq    struct{ reply chan struct{} }
	tick       struct{}
	// opDone is a client's answer to a subscribe or unsubscribe the pool
	// made.
	opDone struct {
		m        *member
		sub      bool
		channels []string
		err      error
	}
)

// waiter is a Subscribe or Unsubscribe call waiting for its channels.
type waiter struct {
	left map[string]bool
	errs []error // the venue's refusals, for Subscribe (written before done closes)
	done chan struct{}
}

func newWaiter() *waiter { return &waiter{left: map[string]bool{}, done: make(chan struct{})} }

// settle reports whether nothing is left, closing done then.
func (w *waiter) settle() bool {
	if len(w.left) == 0 {
		close(w.done)
		return true
	}
	return false
}

// member is one client of the pool.
type member struct {
	pid       *actor.PID
	c         *actors.Client
	connected bool
	degraded  bool // a wanted channel of the client is not active (restoring after a reconnect)
	gen       uint64
	order     int                // discovery order, for ties
	copies    map[string]*copyOf // by channel name
}

// load counts the copies that stay on m (not being moved away or removed).
func (m *member) load() int {
	n := 0
	for _, cp := range m.copies {
		if !cp.going && !cp.leaving {
			n++
		}
	}
	return n
}
