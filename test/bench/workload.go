package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// window bounds the messages in flight in the send workload, for every
// contender alike (as in actors/bench_test.go), so that none overruns a
// queue and the rate is the client's, not the socket buffers'.
const window = 256

// Config sizes one comparison run.
type Config struct {
	Rounds     int      // A B A B ... rounds; the table shows medians over them
	Sends      int      // messages per send run at 64 B and 512 B (a fifth at 8 KiB)
	Calls      int      // sequential calls for the round-trip percentiles
	AllocCalls int      // calls for allocations per call
	Callers    int      // concurrent callers
	CallsEach  int      // calls per concurrent caller
	Idle       []int    // idle connection counts for the footprint
	Drops      int      // drops per reconnect run
	Setups     int      // dials per setup run
	DialPool   int      // concurrent dials when opening idle connections
	Only       []string // workloads to run by name (e.g. "reconnect"); empty: all
}

// FullConfig is the full run (about 8 minutes on 2 cores).
var FullConfig = Config{Rounds: 7, Sends: 100000, Calls: 10000, AllocCalls: 3000, Callers: 64, CallsEach: 300,
	Idle: []int{1000, 10000}, Drops: 20, Setups: 10, DialPool: 500}

// ShortConfig is the -short run (about a minute on 2 cores).
var ShortConfig = Config{Rounds: 3, Sends: 30000, Calls: 3000, AllocCalls: 1000, Callers: 64, CallsEach: 100,
	Idle: []int{1000}, Drops: 5, Setups: 3, DialPool: 500}

// SmokeConfig runs each workload once, tiny: it tests the harness.
var SmokeConfig = Config{Rounds: 1, Sends: 300, Calls: 100, AllocCalls: 100, Callers: 8, CallsEach: 10,
	Idle: []int{20}, Drops: 1, Setups: 1, DialPool: 20}

// workload is one thing measured for every contender; one run gives one
// value per row key.
type workload struct {
	name string
	rows []row
	run  func(ctx context.Context, lib Library, url string, c Contender) (map[string]float64, error)
}

// workloads lists what cfg runs, in order.
func workloads(cfg Config) []workload {
	var ws []workload
	for _, size := range []int{64, 512, 8192} {
		n := cfg.Sends
		if size == 8192 {
			n = max(1, n/5)
		}
		key := "send " + sizeName(size)
		ws = append(ws, workload{
			name: key,
			rows: []row{{key: key, label: "send + echo " + sizeName(size), unit: unitRate, higher: true, ratio: true,
				goal: goal{kind: atLeastRatio, value: 0.8}}},
			run: func(ctx context.Context, lib Library, url string, _ Contender) (map[string]float64, error) {
				rate, err := sendRate(ctx, lib, url, size, n)
				return map[string]float64{key: rate}, err
			},
		})
	}
	ws = append(ws, workload{
		name: "round trip",
		rows: []row{
			{key: "rtt p50", label: "round trip p50", unit: unitDuration, ratio: true, goal: goal{kind: atMostRatio, value: 1.5}},
			{key: "rtt p99", label: "round trip p99", unit: unitDuration, ratio: true},
			{key: "allocs", label: "allocations per call", unit: unitCount},
			{key: "callers", label: fmt.Sprintf("%d concurrent callers", cfg.Callers), unit: unitCallRate, higher: true, ratio: true,
				goal: goal{kind: atLeastRatio, value: 0.7}},
		},
		run: func(ctx context.Context, lib Library, url string, _ Contender) (map[string]float64, error) {
			return roundTrip(ctx, lib, url, cfg)
		},
	})
	for _, n := range cfg.Idle {
		bk, gk := fmt.Sprintf("bytes %d", n), fmt.Sprintf("goroutines %d", n)
		ws = append(ws, workload{
			name: fmt.Sprintf("idle %d", n),
			rows: []row{
				{key: bk, label: fmt.Sprintf("memory per idle connection (%s)", thousands(float64(n))), unit: unitBytes, ratio: true,
					goal: goal{kind: atMostRatio, value: 2}},
				{key: gk, label: fmt.Sprintf("goroutines per idle connection (%s)", thousands(float64(n))), unit: unitCount},
			},
			run: func(ctx context.Context, lib Library, url string, c Contender) (map[string]float64, error) {
				if c.Pooled {
					return map[string]float64{}, nil // a pool is not one idle connection
				}
				b, g, err := idle(ctx, lib, url, n, cfg.DialPool)
				return map[string]float64{bk: b, gk: g}, err
			},
		})
	}
	ws = append(ws, workload{
		name: "reconnect",
		rows: []row{
			{key: "reconnect p50", label: "reconnect after a drop, median", unit: unitDuration, ratio: true, redial: true,
				goal: goal{kind: atMostRatio, value: 2}},
			{key: "reconnect max", label: "reconnect after a drop, max", unit: unitDuration, ratio: true, redial: true, worst: true,
				goal: goal{kind: atMostAbs, value: float64(RetryDelay + 50*time.Millisecond)}},
		},
		run: func(ctx context.Context, lib Library, url string, c Contender) (map[string]float64, error) {
			p50, worst, err := reconnect(ctx, lib, url, c, cfg.Drops)
			return map[string]float64{"reconnect p50": p50, "reconnect max": worst}, err
		},
	})
	ws = append(ws, workload{
		name: "setup",
		rows: []row{{key: "setup", label: "setup: dial to first response", unit: unitDuration, ratio: true}},
		run: func(ctx context.Context, lib Library, url string, _ Contender) (map[string]float64, error) {
			d, err := setup(ctx, lib, url, cfg.Setups)
			return map[string]float64{"setup": d}, err
		},
	})
	if len(cfg.Only) > 0 {
		ws = slices.DeleteFunc(ws, func(w workload) bool { return !slices.Contains(cfg.Only, w.name) })
	}
	return ws
}

// sendRun is one run of the send workload: the echoes still to come back.
type sendRun struct {
	want atomic.Int64
	got  atomic.Int64
	done chan struct{}
}

// sendRate sends n messages of size bytes as fast as the window allows and
// returns messages/s, counted by their echoes. Echoes, not server-side
// receipts: the rate then includes each library's receive path (for zenws
// the actor and the handler queue, its most expensive part), it is
// measured in one process with one clock, and the window keeps the socket
// buffers from absorbing a burst that was never delivered.
func sendRate(ctx context.Context, lib Library, url string, size, n int) (float64, error) {
	credits := make(chan struct{}, window)
	var cur atomic.Pointer[sendRun]
	conn, err := lib.Dial(ctx, url, func() {
		select {
		case <-credits:
		default:
		}
		if r := cur.Load(); r != nil && r.got.Add(1) == r.want.Load() {
			close(r.done)
		}
	})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	payload := []byte(strings.Repeat("x", size))
	send := func(n int) (time.Duration, error) {
		r := &sendRun{done: make(chan struct{})}
		r.want.Store(int64(n))
		cur.Store(r)
		runtime.GC()
		start := time.Now()
		for i := 0; i < n; i++ {
			select {
			case credits <- struct{}{}:
			case <-ctx.Done():
				return 0, fmt.Errorf("send window: %w", ctx.Err())
			}
			if err := conn.Send(ctx, payload); err != nil {
				return 0, err
			}
		}
		select {
		case <-r.done:
			return time.Since(start), nil
		case <-ctx.Done():
			return 0, fmt.Errorf("echoes: %d of %d: %w", r.got.Load(), n, ctx.Err())
		}
	}
	if _, err := send(min(1000, n)); err != nil { // warm up
		return 0, err
	}
	d, err := send(n)
	if err != nil {
		return 0, err
	}
	return float64(n) / d.Seconds(), nil
}

// roundTrip measures sequential calls (p50, p99 in ns), allocations per
// call (process-wide, so the reader goroutines' share is in; the server is
// in another process) and the calls/s of concurrent callers.
func roundTrip(ctx context.Context, lib Library, url string, cfg Config) (map[string]float64, error) {
	conn, err := lib.Dial(ctx, url, func() {})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for i := 0; i < min(500, cfg.Calls); i++ { // warm up
		if err := conn.Call(ctx); err != nil {
			return nil, err
		}
	}
	runtime.GC()
	lat := make([]time.Duration, cfg.Calls)
	for i := range lat {
		start := time.Now()
		if err := conn.Call(ctx); err != nil {
			return nil, err
		}
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	out := map[string]float64{"rtt p50": float64(lat[len(lat)/2]), "rtt p99": float64(lat[len(lat)*99/100])}

	m0 := mallocs()
	for i := 0; i < cfg.AllocCalls; i++ {
		if err := conn.Call(ctx); err != nil {
			return nil, err
		}
	}
	out["allocs"] = float64(mallocs()-m0) / float64(cfg.AllocCalls)

	runtime.GC()
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Callers)
	start := time.Now()
	for g := 0; g < cfg.Callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < cfg.CallsEach; i++ {
				if err := conn.Call(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	out["callers"] = float64(cfg.Callers*cfg.CallsEach) / d.Seconds()
	return out, nil
}

// idle opens n connections (pool at a time), lets them sit, and returns
// the heap + stack bytes and the goroutines they add per connection.
func idle(ctx context.Context, lib Library, url string, n, pool int) (bytes, goroutines float64, err error) {
	g0, m0 := settle()
	conns := make([]Conn, n)
	var firstErr error
	var once sync.Once
	parallel(n, pool, func(i int) {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := lib.Dial(dctx, url, func() {})
		if err != nil {
			once.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
			return
		}
		conns[i] = c
	})
	if firstErr == nil {
		time.Sleep(200 * time.Millisecond) // let the handshakes' transient goroutines end
		g1, m1 := settle()
		goroutines = float64(g1-g0) / float64(n)
		bytes = (float64(m1) - float64(m0)) / float64(n)
	}
	var closeErr error
	var closeOnce sync.Once
	parallel(n, pool, func(i int) {
		if conns[i] == nil {
			return
		}
		if err := conns[i].Close(); err != nil {
			closeOnce.Do(func() { closeErr = err })
		}
	})
	return bytes, goroutines, errors.Join(firstErr, closeErr)
}

// parallel runs fn(0..n-1) on at most pool goroutines and waits for all.
func parallel(n, pool int, fn func(i int)) {
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < min(pool, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// reconnect drops the connection from the server side drops times and
// measures each time from the drop command to the next successful call: a
// contender that reconnects by itself is called again every pollInterval
// until a call succeeds; for one that does not, the harness redials as soon
// as the connection reports it was lost. It returns the median and the
// worst, in ns.
func reconnect(ctx context.Context, lib Library, url string, c Contender, drops int) (p50, worst float64, err error) {
	conn, err := lib.Dial(ctx, url, func() {})
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	var ds []time.Duration
	for i := 0; i < drops; i++ {
		if err := conn.Call(ctx); err != nil { // connected, answered
			return 0, 0, err
		}
		// Keep the connection up past zenws's stable period (for every
		// contender alike): the row is the redial after a stable connection.
		time.Sleep(StableAfter + 20*time.Millisecond)
		start := time.Now()
		if err := conn.Send(ctx, []byte(dropCommand)); err != nil {
			return 0, 0, err
		}
		dctx, cancel := context.WithTimeout(ctx, dropDeadline)
		if c.Reconnects {
			err = retryCall(dctx, conn)
		} else {
			err = redial(dctx, lib, url, &conn)
		}
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("drop %d of %d: %w", i+1, drops, err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2]), float64(ds[len(ds)-1]), nil
}

// dropDeadline bounds each reconnect of the reconnect workload.
const dropDeadline = 10 * time.Second

// retryCall calls until a call succeeds or ctx ends: after a failed call
// it waits for the library's word that the connection is back where the
// library gives one (readyWaiter), else pollInterval.
func retryCall(ctx context.Context, conn Conn) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := conn.Call(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no successful call within %v of the drop: %w", dropDeadline, err)
		}
		if w, ok := conn.(readyWaiter); ok {
			_ = w.WaitReady(ctx) // a wait that ends in an error ends in the next Call's
			continue
		}
		time.Sleep(pollInterval)
	}
}

// redial is the harness's reconnect for a contender without its own: wait
// until the connection reports it was lost, dial again at once, call.
func redial(ctx context.Context, lib Library, url string, conn *Conn) error {
	select {
	case <-(*conn).Lost():
	case <-ctx.Done():
		return fmt.Errorf("drop not noticed: %w", ctx.Err())
	}
	_ = (*conn).Close()
	c, err := lib.Dial(ctx, url, func() {})
	if err != nil {
		*conn = nil
		return err
	}
	*conn = c
	return c.Call(ctx)
}

// setup dials n times, each time until the first response, and returns the
// median in ns.
func setup(ctx context.Context, lib Library, url string, n int) (float64, error) {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		conn, err := lib.Dial(ctx, url, func() {})
		if err != nil {
			return 0, err
		}
		err = conn.Call(ctx)
		d := time.Since(start)
		if cerr := conn.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2]), nil
}

func sizeName(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
