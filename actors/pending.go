package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/transport"
)

// maxLate bounds the ids of abandoned requests remembered to recognise
// their late responses.
const maxLate = 1024

// reqKey is a request id as the pending table matches it: the ids that
// mean the same to JSON-RPC share a key. An integer matches by its value
// (7 and 7, -0 and 0), a string by its decoded text; a string "7" never
// matches the number 7. Integers cost no allocation.
type reqKey struct {
	n   uint64 // an integer's magnitude
	neg bool   // ... and its sign (never set for 0)
	str bool   // a string id, in s
	s   string
}

// intKey is the key of a non-negative integer id.
func intKey(n uint64) reqKey { return reqKey{n: n} }

// parseKey reads a raw JSON id: an integer that fits int64 or uint64, or
// a string. Other ids (null, fractions, exponents, objects, arrays,
// booleans, integers out of range) have no key: no request can carry
// them. It matches exactly what jsonrpc.Key matches.
func parseKey(raw []byte) (reqKey, bool) {
	if len(raw) == 0 {
		return reqKey{}, false
	}
	if raw[0] == '"' {
		s, ok := jsonrpc.String(raw)
		return reqKey{str: true, s: s}, ok
	}
	i, neg := 0, raw[0] == '-'
	if neg {
		i = 1
	}
	if i == len(raw) {
		return reqKey{}, false
	}
	var n uint64
	for ; i < len(raw); i++ {
		c := raw[i]
		if c < '0' || c > '9' {
			return reqKey{}, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return reqKey{}, false // past uint64
		}
		n = n*10 + d
	}
	if neg && n > 1<<63 {
		return reqKey{}, false // past int64
	}
	return reqKey{n: n, neg: neg && n != 0}, true
}

// pendingTable correlates responses with the requests waiting for them. It
// is shared by Request callers (who register), the connection's reader (who
// resolves) and the actor (who fails everything when the connection ends).
//
// A request's RequestTimeout is kept here, not by a context and a timer of
// its own: the requests sent and waiting are linked in deadline order (the
// order they were registered in, as every request of a client has the same
// timeout), and one timer per client fires at the earliest deadline and
// expires what is due. Entries come from a pool. So a request costs no
// allocation in the table.
type pendingTable struct {
	mu    sync.Mutex
	calls map[reqKey]*pendingCall // nil until the first request
	// head and tail link the requests that wait for their response
	// (linked), earliest deadline first.
	head, tail *pendingCall
	timer      *time.Timer // fires at head's deadline; nil until the first wait
	armed      bool        // the timer is set (or its expiry is running)
	armedAt    time.Time   // ... for this deadline
	// Ids of requests that gave up (timeout, cancel): their responses are
	// counted and dropped, not shown to the handler as unmatched.
	gaveUp     map[reqKey]gaveUp // requests given up on, by key: the connection each went out on
	gaveUpRing []gaveUpSlot      // allocated on first use: most clients never give up on a request
	gaveUpSeq  uint64
	gaveUpNext int
	late       atomic.Uint64
	// drains are closed once no request waits on their connection (a
	// rotated-out connection retires then, see whenDrained).
	drains map[*transport.Conn]chan struct{}
}

type pendingCall struct {
	done  chan pendingResult             // capacity 1: resolving never blocks
	conn  atomic.Pointer[transport.Conn] // the connection it went out on
	after uint64                         // the give-up of the same key it was registered after (gaveUp.seq); 0: none
	key   reqKey
	start time.Time // registered
	// deadline is start + RequestTimeout; the caller's ctx may end sooner.
	deadline   time.Time
	prev, next *pendingCall
	linked     bool     // in the deadline list (sent, waiting for its response)
	ctx        boundCtx // the caller's ctx bounded by deadline, for the waits before the write
}

type pendingResult struct {
	resp []byte
	vr   *venue.Response  // the venue's reading of resp (venue.Correlator), made once on the reader; nil: JSON-RPC
	env  jsonrpc.Envelope // resp's JSON-RPC envelope as the reader peeked it (zero: not peeked)
	err  error
	// expired: RequestTimeout passed (err is nil); the request was given up
	// on as abandon(asLate) does.
	expired bool
}

// gaveUp is the requests of one key given up on: the connection they went
// out on, how many answers of theirs are still to come there (answers
// come in order: a request registered after them takes the answer after
// theirs), and the last give-up's number (the ring forgets the oldest,
// not a newer give-up of the same key).
type gaveUp struct {
	conn *transport.Conn
	seq  uint64
	n    int
}

type gaveUpSlot struct {
	key reqKey
	seq uint64 // 0: empty
}

var pendingPool = sync.Pool{New: func() any { return &pendingCall{done: make(chan pendingResult, 1)} }}

// release returns c to the pool once its request is over: it is out of
// the table and nothing will send on c.done (every result was received).
func (c *pendingCall) release() {
	c.conn.Store(nil)
	c.key, c.ctx = reqKey{}, boundCtx{}
	pendingPool.Put(c)
}

func newPendingTable() *pendingTable { return &pendingTable{} }

// register enters a request under key, with timeout from now as its
// deadline. ErrDuplicateID when one with the same key is pending.
func (t *pendingTable) register(key reqKey, timeout time.Duration) (*pendingCall, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.calls[key]; dup {
		return nil, ErrDuplicateID
	}
	if t.calls == nil {
		t.calls = map[reqKey]*pendingCall{}
	}
	c := pendingPool.Get().(*pendingCall)
	c.key, c.after = key, t.gaveUp[key].seq
	c.start = time.Now() // under mu: deadlines grow in registration order
	c.deadline = c.start.Add(timeout)
	t.calls[key] = c
	return c, nil
}

// await starts c's RequestTimeout once its request is written: from now
// on it is given up on as late (its answer counted and dropped) when its
// deadline passes. Not when it was answered or failed already.
func (t *pendingTable) await(c *pendingCall) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls[c.key] != c {
		return
	}
	// Insert from the tail: the deadlines of one client come in order,
	// except for the few requests whose writes overtook one another.
	at := t.tail
	for at != nil && at.deadline.After(c.deadline) {
		at = at.prev
	}
	c.prev, c.linked = at, true
	if at == nil {
		c.next, t.head = t.head, c
	} else {
		c.next, at.next = at.next, c
	}
	if c.next == nil {
		t.tail = c
	} else {
		c.next.prev = c
	}
	// The timer is set only when it is not, or for later than c's
	// deadline (c's write overtook another's): a client's deadlines grow,
	// so a call costs no timer update while one is set.
	if !t.armed || c.deadline.Before(t.armedAt) {
		t.armed, t.armedAt = true, c.deadline
		d := time.Until(c.deadline)
		if t.timer == nil {
			t.timer = time.AfterFunc(d, t.expire)
		} else {
			t.timer.Reset(d)
		}
	}
}

// unlinkLocked takes c out of the deadline list; with t.mu held.
func (t *pendingTable) unlinkLocked(c *pendingCall) {
	if !c.linked {
		return
	}
	if c.prev == nil {
		t.head = c.next
	} else {
		c.prev.next = c.next
	}
	if c.next == nil {
		t.tail = c.prev
	} else {
		c.next.prev = c.prev
	}
	c.prev, c.next, c.linked = nil, nil, false
}

// removeLocked takes c out of the table; with t.mu held.
func (t *pendingTable) removeLocked(c *pendingCall) {
	delete(t.calls, c.key)
	t.unlinkLocked(c)
	if len(t.drains) > 0 {
		t.checkDrainsLocked()
	}
}

// expire runs when the timer fires: the requests whose deadline has passed
// are given up on (as late), and the timer is set for the next deadline.
func (t *pendingTable) expire() {
	var due []*pendingCall
	t.mu.Lock()
	now := time.Now()
	for c := t.head; c != nil && !c.deadline.After(now); c = t.head {
		t.removeLocked(c)
		t.markLateLocked(c)
		due = append(due, c)
	}
	if t.head != nil {
		t.armedAt = t.head.deadline
		t.timer.Reset(t.head.deadline.Sub(now))
	} else {
		t.armed = false
	}
	t.mu.Unlock()
	for _, c := range due {
		c.done <- pendingResult{expired: true}
	}
}

// markLateLocked remembers c's key as given up on, so that its late
// answer is counted and dropped; with t.mu held.
func (t *pendingTable) markLateLocked(c *pendingCall) {
	if t.gaveUpRing == nil {
		t.gaveUpRing = make([]gaveUpSlot, maxLate)
	}
	if old := t.gaveUpRing[t.gaveUpNext]; old.seq != 0 && t.gaveUp[old.key].seq == old.seq {
		delete(t.gaveUp, old.key) // not when the key was given up again since: that one is newer
	}
	t.gaveUpSeq++
	t.gaveUpRing[t.gaveUpNext] = gaveUpSlot{key: c.key, seq: t.gaveUpSeq}
	t.gaveUpNext = (t.gaveUpNext + 1) % maxLate
	if t.gaveUp == nil {
		t.gaveUp = map[reqKey]gaveUp{}
	}
	g := gaveUp{conn: c.conn.Load(), seq: t.gaveUpSeq, n: 1}
	if old, ok := t.gaveUp[c.key]; ok && old.conn == g.conn {
		g.n = old.n + 1 // an id reused after a give-up, given up on again
	}
	t.gaveUp[c.key] = g
}

// lateLocked consumes one late answer of key's give-ups; with t.mu held.
func (t *pendingTable) lateLocked(key reqKey, g gaveUp) {
	if g.n > 1 {
		g.n--
		t.gaveUp[key] = g
	} else {
		delete(t.gaveUp, key)
	}
	t.late.Add(1)
}

// whenDrained returns a channel closed once no request waits for a
// response on conn (at once when none does).
func (t *pendingTable) whenDrained(conn *transport.Conn) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch, ok := t.drains[conn]; ok {
		return ch
	}
	ch := make(chan struct{})
	if t.countLocked(conn) == 0 {
		close(ch)
		return ch
	}
	if t.drains == nil {
		t.drains = map[*transport.Conn]chan struct{}{}
	}
	t.drains[conn] = ch
	return ch
}

// checkDrainsLocked closes the drains whose connection has no request
// waiting any more; with t.mu held, after a request left the table.
func (t *pendingTable) checkDrainsLocked() {
	for conn, ch := range t.drains {
		if t.countLocked(conn) == 0 {
			close(ch)
			delete(t.drains, conn)
		}
	}
}

// abandon removes a request that will not wait any longer; if asLate, a
// response arriving later is counted and dropped.
// It reports false when the request was already resolved, failed or
// expired: its result is in c.done, or about to be; receive it before
// releasing c.
func (t *pendingTable) abandon(c *pendingCall, asLate bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls[c.key] != c {
		return false
	}
	t.removeLocked(c)
	if asLate {
		t.markLateLocked(c)
	}
	return true
}

// resolve hands a response that arrived on conn to its request: the one
// with its key that went out on that connection (an answer on another
// connection, a draining one's to a request of the same id, answers
// nothing). It reports whether the response was consumed (by a waiting
// request, or dropped as late).
func (t *pendingTable) resolve(key reqKey, conn *transport.Conn, resp []byte, vr *venue.Response, env jsonrpc.Envelope) bool {
	t.mu.Lock()
	c, ok := t.calls[key]
	if g, late := t.gaveUp[key]; ok && late && g.seq == c.after && g.conn == conn {
		// The id was reused after requests with it gave up on this
		// connection: answers come in order, so the first ones are the
		// late answers of those that gave up, not this request's.
		t.lateLocked(key, g)
		t.mu.Unlock()
		return true
	}
	if ok = ok && c.conn.Load() == conn; ok {
		t.removeLocked(c)
	} else if g, late := t.gaveUp[key]; late && g.conn == conn {
		t.lateLocked(key, g)
		t.mu.Unlock()
		return true
	}
	t.mu.Unlock()
	if ok {
		c.done <- pendingResult{resp: resp, vr: vr, env: env}
	}
	return ok
}

// failAll fails every waiting request at once: the connection ended.
func (t *pendingTable) failAll(err error) {
	t.mu.Lock()
	failed := make([]*pendingCall, 0, len(t.calls))
	for _, c := range t.calls {
		failed = append(failed, c)
	}
	clear(t.calls)
	for c := t.head; c != nil; {
		next := c.next
		c.prev, c.next, c.linked = nil, nil, false
		c = next
	}
	t.head, t.tail = nil, nil
	t.checkDrainsLocked()
	t.mu.Unlock()
	for _, c := range failed {
		c.done <- pendingResult{err: err}
	}
}

// failConn fails the requests that went out on conn: it was closed.
func (t *pendingTable) failConn(conn *transport.Conn, err error) {
	t.mu.Lock()
	var failed []*pendingCall
	for k, c := range t.calls {
		if c.conn.Load() == conn {
			delete(t.calls, k)
			t.unlinkLocked(c)
			failed = append(failed, c)
		}
	}
	t.checkDrainsLocked()
	t.mu.Unlock()
	for _, c := range failed {
		c.done <- pendingResult{err: err}
	}
}

// countLocked counts the requests waiting for a response on conn; with
// t.mu held.
func (t *pendingTable) countLocked(conn *transport.Conn) int {
	n := 0
	for _, c := range t.calls {
		if c.conn.Load() == conn {
			n++
		}
	}
	return n
}

func (t *pendingTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// stop stops the timer when no request waits: the client stops (after
// failAll). A request still waiting keeps it.
func (t *pendingTable) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil && t.head == nil {
		t.timer.Stop()
		t.armed = false
	}
}

// boundCtx is a caller's ctx whose Deadline is also at most dl. Its Done
// is the caller's: it does not close at dl. It is given only to the waits
// before a request's write, which check Deadline before they wait (the
// rate limiter refuses a wait past it; the transport's write queue does
// not write a message whose deadline passed while it queued), so a
// request costs no context and timer of its own.
type boundCtx struct {
	context.Context
	dl time.Time
}

func (b *boundCtx) Deadline() (time.Time, bool) {
	if d, ok := b.Context.Deadline(); ok && d.Before(b.dl) {
		return d, true
	}
	return b.dl, true
}
