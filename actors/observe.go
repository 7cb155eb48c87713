package actors

import (
	"runtime/debug"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// defaultObserverQueue is how many state changes may wait for a slow
// StateObserver. A client changes state a few times per connection, so a
// queue this long fills only when the observer is stuck; then the oldest
// change is dropped (the observer still sees the latest states), counted in
// Health.ObserverDropped and logged.
const defaultObserverQueue = 256

// observerQueue runs the StateObserver off the actor's goroutine, in order,
// on a goroutine that exists only while there is work: a user observer that
// blocks delays only its own later calls, never the actor (whose mailbox
// would grow with every frame meanwhile). Each StateChange still carries the
// exact generation of its change. A nil queue (no observer) does nothing.
type observerQueue struct {
	fn  func(StateChange)
	log *zap.Logger

	mu      sync.Mutex
	items   []StateChange // FIFO
	running bool
	sealed  bool // Close has returned: the observer is not called again
	dropLog everySecond

	dropped atomic.Uint64
	wg      sync.WaitGroup // the observer goroutine
	worker  atomic.Int64   // its goroutine id while it runs (Close from the observer)
}

func newObserverQueue(fn func(StateChange), log *zap.Logger) *observerQueue {
	if fn == nil {
		return nil
	}
	return &observerQueue{fn: fn, log: log}
}

// push queues c; it never blocks.
func (q *observerQueue) push(c StateChange) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sealed {
		q.dropped.Add(1)
		return
	}
	if len(q.items) >= defaultObserverQueue {
		clear(q.items[:1])
		q.items = q.items[1:]
		n := q.dropped.Add(1)
		if q.dropLog.allow() {
			q.log.Warn("state observer is not keeping up: dropping the oldest state change",
				zap.Int("limit", defaultObserverQueue), zap.Uint64("dropped_total", n))
		}
	}
	q.items = append(q.items, c)
	if !q.running {
		q.running = true
		q.wg.Add(1)
		go q.drain()
	}
}

func (q *observerQueue) drain() {
	defer q.wg.Done()
	q.worker.Store(goroutineID())
	defer q.worker.Store(0)
	for {
		c, ok := q.pop(true)
		if !ok {
			return
		}
		q.run(c)
	}
}

// pop takes the oldest queued change; none (or sealed): false, and with
// last the goroutine that asked is no longer running.
func (q *observerQueue) pop(last bool) (StateChange, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 || q.sealed {
		if last {
			q.items, q.running = nil, false
		}
		return StateChange{}, false
	}
	c := q.items[0]
	clear(q.items[:1])
	q.items = q.items[1:]
	return c, true
}

// run calls the observer; a panic in it is logged and swallowed.
func (q *observerQueue) run(c StateChange) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("state observer panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	q.fn(c)
}

// calledFromObserver reports whether the caller is the observer goroutine.
func (q *observerQueue) calledFromObserver() bool {
	if q == nil {
		return false
	}
	w := q.worker.Load()
	return w != 0 && w == goroutineID()
}

// runHere runs the state changes still queued on the calling goroutine,
// the observer's own (Close called from the observer): they are observed
// before Close returns, in order, and nothing after.
func (q *observerQueue) runHere() {
	for {
		c, ok := q.pop(false)
		if !ok {
			return
		}
		q.run(c)
	}
}

// seal makes sure the observer is not called again (Close ran out of
// time): the changes still queued are dropped and counted. A call running
// now goes on.
func (q *observerQueue) seal() {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sealed = true
	if n := len(q.items); n > 0 {
		q.dropped.Add(uint64(n))
		q.log.Warn("close ran out of time: queued state changes dropped, never observed", zap.Int("dropped", n))
		q.items = nil
	}
}

// wait waits for the observer goroutine, once nothing more is pushed.
func (q *observerQueue) wait() {
	if q != nil {
		q.wg.Wait()
	}
}

func (q *observerQueue) droppedCount() uint64 {
	if q == nil {
		return 0
	}
	return q.dropped.Load()
}
