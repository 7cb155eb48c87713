package actors

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// InboundKind says what an inbound message is, in the order the client
// routes them: heartbeats are consumed and never delivered; then
// subscription notifications, responses, other JSON, other text, binary.
type InboundKind int

// Inbound kinds.
const (
	// KindNotification: a JSON-RPC subscription notification
	// ({"method":"subscription","params":{"channel":...}}), or a Binance
	// combined-stream event ({"stream":...,"data":...}); Channel is set.
	KindNotification InboundKind = iota + 1
	// KindResponse: a JSON-RPC response (it has an "id" and a "result" or
	// "error") that matched no pending request of this client.
	KindResponse
	// KindJSON: any other JSON object, or a JSON array (Kraken, Bitfinex).
	KindJSON
	// KindText: a text message that is neither a JSON object nor an array.
	KindText
	// KindBinary: a binary message.
	KindBinary
	// KindGap: not a frame of the venue but the client's notice that a
	// sequenced channel's stream broke (Inbound.Gap says where and why),
	// delivered in the stream where the break is: every notification of
	// Gap.Channel before it is in sync, and the channel's state built from
	// them must be thrown away. The client puts the channel back in sync;
	// the next notification of it that is delivered is a snapshot
	// (Inbound.Snapshot) or, for a reconnect, the first of the new
	// connection. Data is nil. See docs/market-data.md.
	KindGap
)

// String returns the name used in logs.
func (k InboundKind) String() string {
	switch k {
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindJSON:
		return "json"
	case KindText:
		return "text"
	case KindBinary:
		return "binary"
	case KindGap:
		return "gap"
	}
	return fmt.Sprintf("InboundKind(%d)", int(k))
}

// Inbound is one message delivered to the handler or subscriber.
type Inbound struct {
	Client *actor.PID
	Kind   InboundKind
	Data   []byte // the whole frame; owned by the receiver
	// Generation is the connection the message came on: it grows by one
	// with every successful (re)connection. After a change, state built from
	// the stream (an order book) must be resynced.
	Generation uint64
	// Seq numbers the messages the client accepted for delivery, from 1. A
	// jump means the overflow policy dropped messages in between.
	Seq      uint64
	Received time.Time
	// Channel is the subscription channel of a KindNotification (Binance:
	// the "stream").
	Channel string
	// ID is the raw JSON id of a KindResponse (a number or a quoted string).
	ID []byte
	// Unmatched is true for a response whose id no pending request of this
	// client waited for.
	Unmatched bool
	// Snapshot is true for a notification that is a full image of its
	// channel (the venue's Sequencer said so, or the user's snapshot fetch
	// returned it, actors.WithSnapshot): it replaces what came before.
	Snapshot bool
	// Backfill is true for a message a venue fetched on a new connection
	// for what changed while there was none (Deribit's open orders and
	// trades: see actors/deribit), delivered before the connection's own
	// notifications.
	Backfill bool
	// Gap says what broke, for a KindGap; nil otherwise.
	Gap *Gap
}

// Gap is a break in a sequenced channel's stream (a KindGap message).
type Gap struct {
	Channel string
	Reason  GapReason
	// Expected is the number the next update had to hold: the last
	// delivered update's Last plus one (0 when none had been delivered on
	// this channel).
	Expected uint64
	// Got is the First of the update that broke the sequence (GapSequence);
	// 0 for the other reasons.
	Got uint64
	// Generation is the connection the break was seen on.
	Generation uint64
}

// GapReason says why a channel's stream broke.
type GapReason int

// Gap reasons.
const (
	// GapSequence: an update does not follow the one before.
	GapSequence GapReason = iota + 1
	// GapReconnect: the connection was replaced (a reconnect, a restart);
	// what was sent while there was none is lost.
	GapReconnect
	// GapStale: the channel stayed silent longer than its freshness bound
	// (WithFreshness) and is subscribed again.
	GapStale
	// GapOverflow: the inbound queue had no room for an update (the
	// handler is slower than the stream): it is lost, and the channel
	// resynced. A sequenced channel's updates are never dropped silently by
	// the overflow policy, nor evicted by DropOldest.
	GapOverflow
)

// String returns "sequence", "reconnect", "stale" or "overflow".
func (r GapReason) String() string {
	switch r {
	case GapSequence:
		return "sequence"
	case GapReconnect:
		return "reconnect"
	case GapStale:
		return "stale"
	case GapOverflow:
		return "overflow"
	}
	return fmt.Sprintf("GapReason(%d)", int(r))
}

// defaultInboundQueueBytes bounds the bytes of the messages waiting for the
// handler or subscriber, besides their count (defaultInboundQueue).
const defaultInboundQueueBytes = 64 << 20

// inboundBytes is the byte bound of the inbound queue.
func (cfg Config) inboundBytes() int64 {
	if cfg.InboundQueueBytes == 0 {
		return defaultInboundQueueBytes
	}
	return cfg.InboundQueueBytes
}

// deliveryQueue carries inbound messages and lifecycle callbacks from the
// actor to user code, in order, on a goroutine that exists only while there
// is work. At most limit messages, and at most byteLimit bytes of them, wait
// in it (the one being handled is not counted); callbacks always fit (they
// are few and must not be lost). When a message does not fit the overflow
// policy applies. A single message larger than byteLimit is queued only when
// no other message waits (DropOldest evicts them all to make room), so the
// queue holds at most max(byteLimit, ReadLimit) bytes.
type deliveryQueue struct {
	mu        sync.Mutex
	items     []delivery // FIFO: items[head:] wait
	head      int
	msgs      int   // messages (not callbacks) waiting
	bytes     int64 // their Data, in bytes
	limit     int
	byteLimit int64 // 0: no byte bound
	policy    OverflowPolicy
	running   bool
	closed    bool // no more work is accepted (the client has stopped)
	sealed    bool // no more user code is run (Close has returned)
	// warnedNoReceiver: the no-receiver warning was logged (beside the
	// other flags: apart, it would take a word of padding).
	warnedNoReceiver bool
	seq              uint64

	dropped atomic.Uint64
	panics  atomic.Uint64
	deliver func(*Inbound)
	log     *zap.Logger
	wg      sync.WaitGroup // the delivery goroutine
	worker  atomic.Int64   // its goroutine id while it runs user code
	dropLog everySecond    // the overflow warning, once a second
}

type delivery struct {
	msg  *Inbound
	fn   func()
	last bool // OnDisconnect: named when it is skipped
	// kept: an update of a sequenced channel (pushKept), never evicted by
	// DropOldest: a hole in it behind the sequence guard's back would be a
	// break no notice announces.
	kept bool
}

func newDeliveryQueue(limit int, policy OverflowPolicy, deliver func(*Inbound), log *zap.Logger) *deliveryQueue {
	return &deliveryQueue{limit: limit, policy: policy, deliver: deliver, log: log}
}

// push queues a message, applying the overflow policy; it never blocks.
func (q *deliveryQueue) push(m *Inbound) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.dropped.Add(1) // routed after the stop: counted, never lost silently
		return
	}
	q.seq++
	m.Seq = q.seq
	if q.deliver == nil {
		// No handler or subscriber (or the subscriber has stopped): the
		// message has nowhere to go. Count it, never lose it silently.
		q.dropped.Add(1)
		if !q.warnedNoReceiver {
			q.warnedNoReceiver = true
			q.log.Info("inbound message discarded: no handler or subscriber (counted in Health.InboundDropped)")
		}
		return
	}
	size := int64(len(m.Data))
	if !q.fitsLocked(size) {
		q.droppedLocked()
		if q.policy == DropNewest {
			return
		}
		for !q.fitsLocked(size) && q.evictOldestLocked() {
			if !q.fitsLocked(size) {
				q.droppedLocked() // each evicted message is one drop
			}
		}
	}
	q.items = append(q.items, delivery{msg: m})
	q.msgs++
	q.bytes += size
	q.startLocked()
}

// fitsLocked reports whether a message of size bytes may join the queue
// now: under both bounds, or alone (a message larger than the byte bound
// is accepted only when no other message waits).
func (q *deliveryQueue) fitsLocked(size int64) bool {
	if q.msgs >= q.limit {
		return false
	}
	return q.msgs == 0 || q.byteLimit <= 0 || q.bytes+size <= q.byteLimit
}

// pushKept queues an update of a sequenced channel if it fits (under
// DropOldest, after evicting older messages that are not kept); it reports
// false, and counts the drop, when it does not: the sequence guard then
// announces the hole and resyncs the channel (sequence.go).
func (q *deliveryQueue) pushKept(m *Inbound) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.deliver == nil {
		q.mu.Unlock()
		q.push(m) // counted as push counts it; nothing for the guard to repair
		q.mu.Lock()
		return true
	}
	q.seq++
	m.Seq = q.seq
	size := int64(len(m.Data))
	if !q.fitsLocked(size) && q.policy == DropOldest {
		for !q.fitsLocked(size) && q.evictOldestLocked() {
			q.droppedLocked()
		}
	}
	if !q.fitsLocked(size) {
		q.droppedLocked()
		return false
	}
	q.items = append(q.items, delivery{msg: m, kept: true})
	q.msgs++
	q.bytes += size
	q.startLocked()
	return true
}

// pushNotice queues a message the overflow policy never drops: a gap
// notice (KindGap), whose loss would leave a consumer with a book it must
// throw away. Notices are few (one per channel per resync, and resyncs
// back off: sequence.go), so they are not counted against the bounds.
func (q *deliveryQueue) pushNotice(m *Inbound) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.dropped.Add(1)
		return
	}
	q.seq++
	m.Seq = q.seq
	q.items = append(q.items, delivery{fn: func() {
		q.mu.Lock()
		deliver := q.deliver
		q.mu.Unlock()
		if deliver == nil {
			q.dropped.Add(1)
			return
		}
		deliver(m)
	}})
	q.startLocked()
}

// call queues a callback; callbacks are never dropped.
func (q *deliveryQueue) call(fn func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.items = append(q.items, delivery{fn: fn})
		q.startLocked()
	}
}

// setDeliver replaces the receiver; nil discards (and counts) messages.
func (q *deliveryQueue) setDeliver(fn func(*Inbound)) {
	q.mu.Lock()
	q.deliver = fn
	q.warnedNoReceiver = false
	q.mu.Unlock()
}

// stop ends deliveries when the client has stopped for good: the messages
// still queued are dropped, counted in Health.InboundDropped and logged
// (the handler would otherwise run on, possibly for seconds, after Close);
// callbacks already queued still run, then last (OnDisconnect; may be nil).
// Nothing more is accepted afterwards.
func (q *deliveryQueue) stop(last func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	if n := q.dropMessagesLocked(); n > 0 {
		total := q.dropped.Add(uint64(n))
		q.log.Info("client stopped: queued inbound messages dropped, not delivered (counted in Health.InboundDropped)",
			zap.Int("dropped", n), zap.Uint64("dropped_total", total))
	}
	if last != nil && !q.sealed {
		q.items = append(q.items, delivery{fn: last, last: true})
		q.startLocked()
	}
}

// dropMessagesLocked removes every queued message, keeping the callbacks
// in order, and returns how many it removed.
func (q *deliveryQueue) dropMessagesLocked() int {
	n := q.msgs
	if n == 0 {
		return 0
	}
	kept := q.items[:0]
	for _, d := range q.items[q.head:] {
		if d.msg == nil {
			kept = append(kept, d)
		}
	}
	clear(q.items[len(kept):])
	q.items, q.head, q.msgs, q.bytes = kept, 0, 0, 0
	return n
}

// seal makes sure no user code starts from now on: what is still queued is
// dropped (messages counted as dropped) and a skipped OnDisconnect is
// logged. A call already running goes on; nothing starts after it. Close
// seals when its bound runs out, so that no callback runs after it returned.
func (q *deliveryQueue) seal() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sealed {
		return
	}
	q.sealed, q.closed = true, true
	skipped, onDisconnect := 0, false
	for _, d := range q.items[q.head:] {
		if d.fn != nil {
			skipped++
			onDisconnect = onDisconnect || d.last
		}
	}
	if n := q.dropMessagesLocked(); n > 0 {
		q.dropped.Add(uint64(n))
	}
	clear(q.items)
	q.items, q.head = q.items[:0], 0
	if skipped > 0 {
		q.log.Warn("close ran out of time while user code was still running: queued callbacks skipped, never run",
			zap.Int("skipped", skipped), zap.Bool("on_disconnect_skipped", onDisconnect))
	}
}

// runHere runs the callbacks still queued on the calling goroutine, which
// must be the delivery goroutine (user code calling Close): it cannot run
// them itself until Close has returned, and nothing may run after that.
func (q *deliveryQueue) runHere() {
	for {
		d, ok := q.take()
		if !ok {
			return
		}
		q.run(d)
	}
}

func (q *deliveryQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.msgs
}

// pendingBytes is the size of the messages waiting.
func (q *deliveryQueue) pendingBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

func (q *deliveryQueue) evictOldestLocked() bool {
	if q.head < len(q.items) && q.items[q.head].msg != nil && !q.items[q.head].kept {
		// The usual case (callbacks are rare): pop the head, no copy, so a
		// flood at a stuck handler costs O(1) a frame.
		q.bytes -= int64(len(q.items[q.head].msg.Data))
		q.items[q.head] = delivery{}
		q.head++
		q.msgs--
		q.compactLocked()
		return true
	}
	for i := q.head; i < len(q.items); i++ {
		if q.items[i].msg != nil && !q.items[i].kept {
			q.bytes -= int64(len(q.items[i].msg.Data))
			copy(q.items[i:], q.items[i+1:])
			q.items[len(q.items)-1] = delivery{}
			q.items = q.items[:len(q.items)-1]
			q.msgs--
			return true
		}
	}
	return false
}

func (q *deliveryQueue) droppedLocked() {
	n := q.dropped.Add(1)
	if q.dropLog.allow() {
		q.log.Warn("inbound queue full: dropping messages (the handler is slower than the stream)",
			zap.Int("limit", q.limit), zap.Int64("byte_limit", q.byteLimit), zap.Int64("queued_bytes", q.bytes),
			zap.Stringer("policy", q.policy), zap.Uint64("dropped_total", n))
	}
}

func (q *deliveryQueue) startLocked() {
	if q.running {
		return
	}
	q.running = true
	q.wg.Add(1)
	go q.drain()
}

// next takes the oldest item, or reports that the queue is empty or sealed
// (and the goroutine must end).
func (q *deliveryQueue) next() (delivery, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	d, ok := q.takeLocked()
	if !ok {
		q.running = false
	}
	return d, ok
}

// take is next for runHere: the goroutine it runs on stays the worker.
func (q *deliveryQueue) take() (delivery, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeLocked()
}

// takeLocked removes the oldest item, under the lock that seal takes: once
// seal has returned no item is taken, so no user code starts.
func (q *deliveryQueue) takeLocked() (delivery, bool) {
	if q.head == len(q.items) || q.sealed {
		q.items, q.head = q.items[:0], 0
		return delivery{}, false
	}
	d := q.items[q.head]
	q.items[q.head] = delivery{}
	q.head++
	if d.msg != nil {
		q.msgs--
		q.bytes -= int64(len(d.msg.Data))
	}
	q.compactLocked()
	return d, true
}

// compactLocked moves the waiting items to the front once most of the
// slice is spent, so the FIFO's memory follows what waits (amortised O(1)).
func (q *deliveryQueue) compactLocked() {
	if q.head > 1024 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}

// drain runs user code until the queue is empty, then exits.
func (q *deliveryQueue) drain() {
	defer q.wg.Done()
	q.worker.Store(goroutineID())
	defer q.worker.Store(0)
	for {
		d, ok := q.next()
		if !ok {
			return
		}
		q.run(d)
	}
}

// calledFromHandler reports whether the caller is user code that the
// delivery goroutine is running (a handler or callback calling Close).
func (q *deliveryQueue) calledFromHandler() bool {
	w := q.worker.Load()
	return w != 0 && w == goroutineID()
}

func (q *deliveryQueue) run(d delivery) {
	defer func() {
		if r := recover(); r != nil {
			q.panics.Add(1)
			q.log.Error("user code panicked; the connection stays up",
				zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	q.mu.Lock()
	deliver, sealed := q.deliver, q.sealed
	q.mu.Unlock()
	if sealed { // Close ran out of time since this item was taken
		if d.msg != nil {
			q.dropped.Add(1)
		}
		return
	}
	if d.fn != nil {
		d.fn()
		return
	}
	if deliver == nil {
		q.dropped.Add(1)
		return
	}
	deliver(d.msg)
}

// goroutineID reads the current goroutine's id from its stack header
// ("goroutine 123 [running]:"). It costs about a microsecond, paid once per
// delivery-goroutine start and once per Close.
func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}
