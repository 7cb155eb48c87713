package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/supervision"
)

// Kinds of balanced operations.
const (
	opGetTime = "public/get_time" // retry-safe call
	opOrder   = "private/buy"     // not retry-safe: never sent twice
	opSend    = "send"            // balanced send, marked retry-safe
)

// opStats is what one kind of operation returned.
type opStats struct {
	mu       sync.Mutex
	total    int
	ok       int
	classes  map[string]int  // error class -> count
	untyped  []string        // errors of no documented type (at most a few kept)
	elapsed  []time.Duration // every operation's duration
	overruns int             // returned after deadline + grace
}

func (s *opStats) record(class string, err error, d, limit time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.elapsed = append(s.elapsed, d)
	if d > limit {
		s.overruns++
	}
	switch {
	case err == nil:
		s.ok++
	case class == "untyped":
		if len(s.untyped) < 5 {
			s.untyped = append(s.untyped, err.Error())
		}
		fallthrough
	default:
		if s.classes == nil {
			s.classes = make(map[string]int)
		}
		s.classes[class]++
	}
}

// class is how many operations failed with the error class.
func (s *opStats) class(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.classes[name]
}

func (s *opStats) failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total - s.ok
}

// percentile of the recorded durations (p in [0, 1]).
func (s *opStats) percentile(p float64) time.Duration {
	s.mu.Lock()
	d := slices.Clone(s.elapsed)
	s.mu.Unlock()
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

// errorSummary lists the error classes, most frequent first.
func (s *opStats) errorSummary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.classes) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(s.classes))
	for k := range s.classes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if s.classes[a] != s.classes[b] {
			return s.classes[b] - s.classes[a]
		}
		return cmp.Compare(a, b)
	})
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", k, s.classes[k])
	}
	return out
}

// classify names the documented error an operation returned, and whether
// an order that failed so may have been executed: "sent" for an answer or
// a loss in flight, "unsent" when the library proves nothing left.
func classify(err error) (class string, mayBeExecuted bool) {
	var rpcErr *actors.RPCError
	switch {
	case err == nil:
		return "ok", true
	case errors.As(err, &rpcErr):
		return fmt.Sprintf("rpc-%d", rpcErr.Code), false // an answer: the venue refused it
	// Lost in flight: the venue may or may not have executed it.
	case errors.Is(err, actors.ErrDisconnected):
		return "disconnected", true
	case errors.Is(err, actors.ErrTimeout):
		return "timeout", true
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline", true
	// Provably never sent.
	case errors.Is(err, balancer.ErrNoConnections):
		return "no-connections", false
	case errors.Is(err, actors.ErrNotConnected):
		return "not-connected", false
	case errors.Is(err, actors.ErrRateLimited):
		return "rate-limited", false
	case errors.Is(err, actors.ErrClosed):
		return "closed", false
	case errors.Is(err, balancer.ErrStopped):
		return "stopped", false
	}
	return "untyped", true
}

// orderOutcome is one order's label and what the balancer said.
type orderOutcome struct {
	label         string
	class         string
	mayBeExecuted bool
}

// workload makes balanced operations from many goroutines until stopped.
type workload struct {
	bal      *balancer.Balancer
	sup      *supervision.Supervisor
	deadline time.Duration // each operation's context deadline
	grace    time.Duration // how late an operation may return (a write under way)

	getTime, orders, sends opStats

	mu       sync.Mutex
	outcomes []orderOutcome

	inflight atomic.Int64
	wg       sync.WaitGroup
	seq      atomic.Int64
}

// start runs n goroutines of kind op, each making one operation every
// pace, until ctx ends.
func (w *workload) start(ctx context.Context, op string, n int, pace time.Duration) {
	for g := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				w.one(op, g)
			}
		}()
	}
}

// one makes one operation with its own deadline, independent of the run's
// context: stopping the workload never cancels an operation in flight.
func (w *workload) one(op string, g int) {
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	ctx, cancel := context.WithTimeout(context.Background(), w.deadline)
	defer cancel()
	n := w.seq.Add(1)
	start := time.Now()
	var err error
	var stats *opStats
	switch op {
	case opGetTime:
		stats = &w.getTime
		_, err = w.bal.Call(ctx, "public/get_time", nil)
	case opOrder:
		stats = &w.orders
		label := fmt.Sprintf("chaos-%d-%d", g, n)
		_, err = w.bal.Call(ctx, "private/buy", map[string]any{
			"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "market", "label": label,
		})
		class, may := classify(err)
		w.mu.Lock()
		w.outcomes = append(w.outcomes, orderOutcome{label: label, class: class, mayBeExecuted: may})
		w.mu.Unlock()
	case opSend:
		stats = &w.sends
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":"send-%d","method":"public/test","params":{}}`, n)
		err = w.sup.SendBalanced(ctx, []byte(msg), balancer.RetrySafe())
	}
	class, _ := classify(err)
	stats.record(class, err, time.Since(start), w.deadline+w.grace)
}

// stop waits for every worker to return, at most within. It returns the
// operations still in flight when it gave up: hung ones.
func (w *workload) stop(within time.Duration) int64 {
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return 0
	case <-time.After(within):
		return w.inflight.Load()
	}
}

func (w *workload) orderOutcomes() []orderOutcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.outcomes)
}
