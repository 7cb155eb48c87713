package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Writes are combined. One writer at a time (the leader) holds the
// connection; the messages that arrive meanwhile queue, and the next leader
// writes all of them under one flush: frame by frame through
// coder/websocket into a batch buffer below it, then one write to the
// network. So under load many messages cost one syscall, and nobody
// waits on coder/websocket's write lock. A message alone is written as
// before, with no copy. Write returns only once its bytes were handed to
// the kernel (or the write failed), whatever batch carried them.
const (
	// maxBatchBytes bounds the payload of one batch (the leader's own
	// message may pass it alone); maxBatch bounds its messages.
	maxBatchBytes = 256 << 10
	maxBatch      = 128
	// maxPooledBatch: a batch buffer grown past this is not kept.
	maxPooledBatch = 1 << 20
)

// yieldCredit is how many yields in a row may gather nobody before a
// leader stops yielding (see lead).
const yieldCredit = 16

// queuedWrite is a message waiting for its turn.
type queuedWrite struct {
	ctx  context.Context
	dl   time.Time // ctx's deadline; zero: none
	typ  websocket.MessageType
	data []byte
	// done gets the message's result, or errLead: the writer that held the
	// connection handed it to this one, which now writes itself and the
	// queue.
	done chan error
}

var (
	errLead    = errors.New("transport: lead")
	queuedPool = sync.Pool{New: func() any { return &queuedWrite{done: make(chan error, 1)} }}
	batchPool  = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}
)

func (w *queuedWrite) release() {
	w.ctx, w.data, w.dl = nil, nil, time.Time{}
	queuedPool.Put(w)
}

// armQueueLocked sets the queue's timer for at: a message whose deadline
// passes while it waits behind a stalled write returns then, not when that
// write ends (a ctx that carries a deadline without closing Done for it,
// as a request's does, needs this). One timer per connection, made on
// first use; with c.wmu held.
func (c *Conn) armQueueLocked(at time.Time) {
	c.qArmed, c.qAt = true, at
	if c.qTimer == nil {
		c.qTimer = time.AfterFunc(time.Until(at), c.expireQueued)
	} else {
		c.qTimer.Reset(time.Until(at))
	}
}

// expireQueued fails the queued messages whose deadline has passed, and
// sets the timer for the next deadline.
func (c *Conn) expireQueued() {
	c.wmu.Lock()
	now := time.Now()
	var due []*queuedWrite
	var next time.Time
	kept := c.queue[:0]
	for _, w := range c.queue {
		switch {
		case !w.dl.IsZero() && !now.Before(w.dl):
			due = append(due, w)
		default:
			kept = append(kept, w)
			if !w.dl.IsZero() && (next.IsZero() || w.dl.Before(next)) {
				next = w.dl
			}
		}
	}
	clear(c.queue[len(kept):])
	c.queue = kept
	c.qArmed = false
	if !next.IsZero() {
		c.armQueueLocked(next)
	}
	c.wmu.Unlock()
	for _, w := range due {
		w.done <- errDeadlinePassed
	}
}

// Write sends one message of type typ. ctx may cancel the wait for another
// writer to finish, and a message whose ctx's deadline has passed when its
// turn comes is not written (an error wrapping ErrNotSent and
// context.DeadlineExceeded); once the message is being written, only
// WriteTimeout bounds it, because interrupting a half-written frame would
// corrupt the stream. A write that times out closes the connection and
// returns an error wrapping ErrWriteTimeout. ErrClosed means nothing was
// written. Messages written concurrently may leave together in one write
// to the network; each Write still returns only once its own bytes were
// handed to the kernel.
func (c *Conn) Write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.wmu.Lock()
	if !c.busy {
		c.busy = true
		c.wmu.Unlock()
		return c.lead(ctx, typ, data)
	}
	w := queuedPool.Get().(*queuedWrite)
	w.ctx, w.typ, w.data = ctx, typ, data
	w.dl, _ = ctx.Deadline()
	c.queue = append(c.queue, w)
	c.contended = yieldCredit
	if !w.dl.IsZero() && (!c.qArmed || w.dl.Before(c.qAt)) {
		c.armQueueLocked(w.dl)
	}
	c.wmu.Unlock()
	var err error
	select {
	case err = <-w.done:
	case <-ctx.Done():
		if c.dequeue(w) {
			w.release()
			return ctx.Err()
		}
		err = <-w.done
	case <-c.done:
		if c.dequeue(w) {
			w.release()
			return ErrClosed
		}
		err = <-w.done
	}
	w.release()
	if err == errLead {
		return c.lead(ctx, typ, data)
	}
	return err
}

// dequeue takes w out of the queue; false when a leader took it already
// (its result is on the way).
func (c *Conn) dequeue(w *queuedWrite) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i, q := range c.queue {
		if q == w {
			last := len(c.queue) - 1
			copy(c.queue[i:], c.queue[i+1:])
			c.queue[last] = nil
			c.queue = c.queue[:last]
			return true
		}
	}
	return false
}

// lead writes the leader's own message and, in the same batch, the
// messages queued behind it; then hands the connection to the next
// writer in the queue, or frees it.
func (c *Conn) lead(ctx context.Context, typ websocket.MessageType, data []byte) error {
	var err error
	if ctx.Err() != nil {
		err = ctx.Err() // cancelled while it waited for the lead
	} else if expired(ctx, time.Now()) {
		err = errDeadlinePassed
	} else {
		c.wmu.Lock()
		if len(c.queue) == 0 && c.contended > 0 {
			// Writers queued here lately: let those made runnable with
			// this one (callers woken by a burst of answers) queue first,
			// so that they leave together. Yields that gather nobody
			// wear this off until a writer queues again: a connection with
			// one writer at a time does not yield.
			c.wmu.Unlock()
			runtime.Gosched()
			c.wmu.Lock()
			if len(c.queue) > 0 {
				c.contended = yieldCredit
			} else {
				c.contended--
			}
		}
		batch := c.takeLocked(len(data))
		c.wmu.Unlock()
		if len(batch) == 0 {
			err = c.writeOne(typ, data)
		} else {
			err = c.writeBatch(typ, data, batch)
		}
	}
	c.handOff()
	return err
}

var errDeadlinePassed = fmt.Errorf("transport: not written, its deadline passed while it waited for another write: %w: %w", ErrNotSent, context.DeadlineExceeded)

func expired(ctx context.Context, now time.Time) bool {
	dl, ok := ctx.Deadline()
	return ok && !now.Before(dl)
}

// takeLocked takes the queued messages that join a batch after the
// leader's own of size own; with c.wmu held.
func (c *Conn) takeLocked(own int) []*queuedWrite {
	if len(c.queue) == 0 || own >= maxBatchBytes {
		return nil
	}
	n, size := 0, own
	for n < len(c.queue) && n < maxBatch-1 && size+len(c.queue[n].data) <= maxBatchBytes {
		size += len(c.queue[n].data)
		n++
	}
	if n == 0 {
		return nil
	}
	batch := make([]*queuedWrite, n) // the queue's array is reused below
	copy(batch, c.queue[:n])
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return batch
}

// handOff passes the connection to the first queued writer, or frees it.
// On a closed connection every queued writer gets ErrClosed at once.
func (c *Conn) handOff() {
	c.wmu.Lock()
	if c.closed.Load() {
		q := c.queue
		c.queue, c.busy = nil, false
		if c.qTimer != nil {
			c.qTimer.Stop()
			c.qArmed = false
		}
		c.wmu.Unlock()
		for _, w := range q {
			w.done <- ErrClosed // nothing of theirs was written
		}
		return
	}
	if len(c.queue) == 0 {
		c.busy = false
		c.wmu.Unlock()
		return
	}
	next := c.queue[0]
	rest := copy(c.queue, c.queue[1:])
	c.queue[rest] = nil
	c.queue = c.queue[:rest]
	c.wmu.Unlock()
	next.done <- errLead
}

// writeOne writes a message alone, straight through.
func (c *Conn) writeOne(typ websocket.MessageType, data []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.out.lead(true)
	before := c.raw.written.Load()
	err := c.ws.Write(context.Background(), typ, data)
	c.out.lead(false)
	if err != nil {
		// Whether any byte of this message left the process decides what
		// the caller may do: resending one that provably did not is safe.
		// (A pong written meanwhile by the reader also counts as written:
		// the doubt then goes the safe way.)
		cause := c.writeError(err)
		c.fail(cause) // not its result: that may say ErrClosed
		if c.raw.written.Load() == before {
			return fmt.Errorf("%w: %w", ErrNotSent, cause)
		}
		return cause
	}
	return nil
}

// writeError wraps a failed write's cause. It is the connection's error
// too (what its reader, its other writers and the requests in flight on
// it are failed with), so it never says ErrNotSent: that is said only to
// the writes of which provably no byte left. A request already on the
// wire failed with "not sent" (because another write met the reset
// first) would be taken for one safe to send again.
func (c *Conn) writeError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v): %w", ErrWriteTimeout, c.writeTimeout, err)
	}
	return fmt.Errorf("transport: write: %w", err)
}

// writeBatch writes the leader's message and batch under one flush, and
// gives each queued writer its result.
func (c *Conn) writeBatch(typ websocket.MessageType, data []byte, batch []*queuedWrite) error {
	if c.closed.Load() {
		for _, w := range batch {
			w.done <- ErrClosed
		}
		return ErrClosed
	}
	now := time.Now()
	// ends[i] is where message i ends in the batch buffer (0: own);
	// skipped[i] says why it was not written.
	ends := make([]int, 1+len(batch))
	skipped := make([]error, 1+len(batch))
	c.out.lead(true)
	before := c.raw.written.Load()
	c.out.startBatch()
	var werr error // a frame coder/websocket refused: the connection is closed
	for i := 0; i <= len(batch); i++ {
		t, d := typ, data
		if i > 0 {
			w := batch[i-1]
			switch {
			case w.ctx.Err() != nil:
				skipped[i] = w.ctx.Err()
			case expired(w.ctx, now):
				skipped[i] = errDeadlinePassed
			}
			t, d = w.typ, w.data
		}
		if skipped[i] == nil && werr == nil {
			werr = c.ws.Write(context.Background(), t, d)
		}
		ends[i] = c.out.batched()
	}
	ferr := c.out.flushBatch()
	c.out.lead(false)
	// The bytes that reached the kernel: on TCP the batch's offsets (all
	// of it went through the coalescer), over TLS only "none" is exact.
	left := c.raw.written.Load() - before
	var failed error
	if werr != nil || ferr != nil {
		cause := ferr
		if cause == nil {
			cause = werr
		}
		failed = c.writeError(cause)
		c.fail(failed)
	}
	// result is message i's outcome.
	result := func(i int) error {
		switch {
		case skipped[i] != nil:
			return skipped[i]
		case failed == nil:
			return nil
		}
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		if ends[i] == start || left == 0 { // not written into the batch (the connection closed first), or nothing left
			return fmt.Errorf("%w: %w", ErrNotSent, failed)
		}
		if !c.tls && int64(start) >= left {
			// Over TLS, a record can leave in part while the count says
			// nothing of it: only a batch of which no byte left is
			// provably not sent.
			return fmt.Errorf("%w: %w", ErrNotSent, failed)
		}
		return failed
	}
	c.combined.Add(int64(1 + len(batch)))
	for i, w := range batch {
		w.done <- result(i + 1)
	}
	return result(0)
}

// coalescer is what coder/websocket writes to. It buffers the writes made
// while a batch is being written, for one write to the network at its end;
// other writes (a pong, a close frame the reader or Close writes meanwhile)
// join the batch while it is open, and wait for its flush otherwise: bytes
// leave in the order they were written.
//
// It also keeps the write deadline. Setting and clearing a deadline around
// every message cost two poller updates per message; instead a deadline is
// set when a message (or a control frame written outside one) starts and
// the one set has less than nine tenths of the timeout left, and it is
// never cleared. So every message is bounded by 0.9 to 1.0 times the
// timeout, and a write after an idle spell finds a fresh deadline.
type coalescer struct {
	w       io.Writer
	mu      sync.Mutex
	on      bool    // a batch is open
	buf     *[]byte // ... and holds this
	failed  error   // an early write of the open batch failed
	leading bool    // a leader's message is being written (its deadline is set)
	timeout time.Duration
	dl      time.Time             // the deadline set
	setDL   func(time.Time) error // the network connection's SetWriteDeadline
}

func (b *coalescer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.on {
		*b.buf = append(*b.buf, p...)
		if !isCloseFrame(p) {
			return len(p), nil
		}
		// A close frame leaves at once, with what the batch holds before
		// it: coder/websocket closes the connection right after writing
		// the reply to a peer's close. (A payload chunk that only looks
		// like one costs an early write, never an error.)
		_, err := b.w.Write(*b.buf)
		*b.buf = (*b.buf)[:0]
		if err != nil {
			b.failed = err // the batch's messages in it may not have left
			return 0, err
		}
		return len(p), nil
	}
	if !b.leading {
		b.freshLocked() // a control frame of its own
	}
	return b.w.Write(p)
}

// isCloseFrame: p starts like a final close frame of a client (the way
// coder/websocket writes one: header, mask and payload in one flush).
func isCloseFrame(p []byte) bool { return len(p) >= 6 && p[0] == 0x88 && p[1]&0x80 != 0 }

// lead marks a leader's message (or batch) starting, with a fresh enough
// deadline, or ending.
func (b *coalescer) lead(on bool) {
	b.mu.Lock()
	if on {
		b.freshLocked()
	}
	b.leading = on
	b.mu.Unlock()
}

// freshLocked sets the deadline when the one set is too near; with b.mu
// held.
func (b *coalescer) freshLocked() {
	if b.setDL == nil {
		return
	}
	now := time.Now()
	if b.dl.Sub(now) < b.timeout-b.timeout/10 {
		b.dl = now.Add(b.timeout)
		_ = b.setDL(b.dl)
	}
}

func (b *coalescer) startBatch() {
	buf := batchPool.Get().(*[]byte)
	b.mu.Lock()
	b.on, b.buf = true, buf
	b.mu.Unlock()
}

// batched is how many bytes the open batch holds.
func (b *coalescer) batched() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(*b.buf)
}

// flushBatch writes the batch and closes it.
func (b *coalescer) flushBatch() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	buf := b.buf
	b.on, b.buf = false, nil
	err := b.failed
	b.failed = nil
	if err == nil && len(*buf) > 0 { // not all written early (a close frame)
		_, err = b.w.Write(*buf)
	}
	if cap(*buf) <= maxPooledBatch {
		*buf = (*buf)[:0]
		batchPool.Put(buf)
	}
	return err
}
