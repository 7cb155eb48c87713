package ratelimit

import (
	"sync"
	"time"
)

// window is a sliding-window bucket: at most cap tokens are taken in any
// interval (T-size, T]. It is the rule as Binance counts it ("5 messages a
// second" over any rolling second); a token bucket of rate cap/size and
// burst cap lets up to 2*cap-1 tokens into one such interval.
//
// It keeps a log of the stamps (instant, tokens) that can still fall in a
// window, sorted by instant: what was taken, charged, or reserved by a
// waiter for a later instant. Reservations are first come, first served:
// a new one never goes before the last stamp, so the log stays sorted
// except for charges, which are put in at their own instant.
type window struct {
	size int64 // the window, ns
	cap  int   // tokens in any window
	base time.Time

	mu     sync.Mutex
	log    []stamp // log[head:] are live, sorted by at
	head   int
	total  int    // tokens of the live stamps
	nextID uint64 // ids of waiters' reservations
}

type stamp struct {
	at int64 // ns since base
	n  int
	id uint64 // a waiter's reservation; 0 otherwise
}

func newWindow(size time.Duration, capacity int) *window {
	return &window{size: int64(size), cap: capacity, base: time.Now()}
}

func (w *window) ns(t time.Time) int64 { return int64(t.Sub(w.base)) }

// expire drops the stamps that no window ending at now or later holds.
func (w *window) expire(now int64) {
	for w.head < len(w.log) && w.log[w.head].at <= now-w.size {
		w.total -= w.log[w.head].n
		w.head++
	}
	if w.head == len(w.log) {
		w.log, w.head = w.log[:0], 0
	} else if w.head > 32 && w.head*2 > len(w.log) { // amortised: each stamp is moved once at most
		n := copy(w.log, w.log[w.head:])
		w.log, w.head = w.log[:n], 0
	}
}

// earliest returns the first instant, not before now nor before the last
// stamp, at which n more tokens fit every window. n <= cap.
func (w *window) earliest(now int64, n int) int64 {
	live := w.log[w.head:]
	t := now
	if len(live) > 0 && live[len(live)-1].at > t {
		t = live[len(live)-1].at
	}
	total, i := w.total, 0
	skip := func() {
		for i < len(live) && live[i].at <= t-w.size {
			total -= live[i].n
			i++
		}
	}
	skip()
	for total+n > w.cap { // total > 0, so i < len(live)
		t = live[i].at + w.size
		skip()
	}
	return t
}

// insert puts s in the log at its place (after every stamp at or before it).
func (w *window) insert(s stamp) {
	w.total += s.n
	j := len(w.log)
	w.log = append(w.log, s)
	for j > w.head && w.log[j-1].at > s.at {
		w.log[j] = w.log[j-1]
		j--
	}
	w.log[j] = s
}

// find returns the index of the reservation id, or -1.
func (w *window) find(id uint64) int {
	for j := len(w.log) - 1; j >= w.head; j-- {
		if w.log[j].id == id {
			return j
		}
	}
	return -1
}

func (w *window) remove(j int) {
	w.total -= w.log[j].n
	copy(w.log[j:], w.log[j+1:])
	w.log = w.log[:len(w.log)-1]
}

// allow takes n tokens at now if every window has room for them.
func (w *window) allow(now time.Time, n int) bool {
	t := w.ns(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expire(t)
	if w.earliest(t, n) > t {
		return false
	}
	w.insert(stamp{at: t, n: n})
	return true
}

// reserve takes n tokens at the earliest instant they fit and returns how
// long from now that is, and the reservation's id when it is later than
// now (for confirm and cancel).
func (w *window) reserve(now time.Time, n int) (time.Duration, uint64) {
	t := w.ns(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expire(t)
	at := w.earliest(t, n)
	if at <= t {
		w.insert(stamp{at: t, n: n})
		return 0, 0
	}
	w.nextID++
	w.insert(stamp{at: at, n: n, id: w.nextID})
	return time.Duration(at - t), w.nextID
}

// confirm is called when the waiter of reservation id wakes. The frame
// goes now, not at the reserved instant (timers fire late), so the stamp
// moves to now; if that, or charges put in since, fill the window ending
// there, the reservation moves to the earliest instant with room and
// confirm returns the wait until then (0: go now).
func (w *window) confirm(now time.Time, id uint64, n int) time.Duration {
	t := w.ns(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.find(id)
	if j < 0 {
		// Expired by another caller: the timer fired a whole window late.
		// Reserve afresh rather than go uncounted.
		w.expire(t)
		at := w.earliest(t, n)
		w.insert(stamp{at: at, n: n, id: id})
		return time.Duration(at - t)
	}
	s := w.log[j]
	if s.at < t {
		w.remove(j)
		s.at = t
		w.insert(s)
	}
	w.expire(t)
	if w.fits(s.at) {
		return 0
	}
	w.remove(w.find(id))
	at := w.earliest(t, s.n)
	w.insert(stamp{at: at, n: s.n, id: id})
	return time.Duration(max(at-t, 0))
}

// fits reports whether every window that holds the instant from (those
// ending at a stamp in [from, from+size)) holds at most cap tokens.
func (w *window) fits(from int64) bool {
	live := w.log[w.head:]
	lo, sum := 0, 0
	for e := range live {
		at := live[e].at
		if at >= from+w.size {
			break
		}
		sum += live[e].n
		for live[lo].at <= at-w.size {
			sum -= live[lo].n
			lo++
		}
		if e+1 < len(live) && live[e+1].at == at {
			continue // the window ends after every stamp at this instant
		}
		if at >= from && sum > w.cap {
			return false
		}
	}
	return true
}

// cancel gives reservation id back.
func (w *window) cancel(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if j := w.find(id); j >= 0 {
		w.remove(j)
	}
}

// charge takes n tokens at now whatever the room, unless the window
// ending now is already a whole capacity in debt (then it takes nothing and
// reports forgiven), so that a flood of charges cannot lock waiters out for
// long. Waiters' reservations for later instants are not debt.
func (w *window) charge(now time.Time, n int) (forgiven bool) {
	t := w.ns(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expire(t)
	past := w.total
	for j := len(w.log) - 1; j >= w.head && w.log[j].at > t; j-- {
		past -= w.log[j].n
	}
	if past+n > 2*w.cap {
		return true
	}
	w.insert(stamp{at: t, n: n})
	return false
}

// tokens returns the room left now: cap less what the live stamps hold,
// reservations included (negative when charges overdrew it).
func (w *window) tokens(now time.Time) float64 {
	t := w.ns(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expire(t)
	return float64(w.cap - w.total)
}
