package supervision_test

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

// BenchmarkSupervised1000 starts 1,000 supervised clients (64 at a time)
// against an echo server in another process and reports the time until all
// are connected (and its ratio to 1,000 bare coder/websocket dials made the
// same way in the same run), goroutines and bytes per client, the time
// Stop takes, and the goroutines left after Stop (goal: 0).
func BenchmarkSupervised1000(b *testing.B) {
	const n = 1000
	testutil.RaiseFileLimit(b, 4*n)
	url, stopServer := testutil.ServerProcess(b)
	defer stopServer()
	for i := 0; i < b.N; i++ {
		r := runSupervised(b, url, n, false)
		b.ReportMetric(float64(r.connect.Milliseconds()), "ms-to-all-connected")
		b.ReportMetric(float64(r.bare.Milliseconds()), "bare-ms-to-all-connected")
		b.ReportMetric(r.connect.Seconds()/r.bare.Seconds(), "connect/bare")
		b.ReportMetric(r.goroutines, "goroutines/client")
		b.ReportMetric(r.bytes, "bytes/client")
		b.ReportMetric(float64(r.stop.Milliseconds()), "ms-to-stop")
		b.ReportMetric(float64(r.left), "goroutines-left")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSupervisedScale runs BenchmarkSupervised1000's measurement at
// 1,000 and then 10,000 clients in the same run, against the same server
// process, and reports each figure at both sizes (suffixes -1k and -10k)
// and the per-client cost at 10,000 as a ratio to 1,000 (goal: at most 1).
// 10,000 clients need the file-descriptor hard limit at 20,000 or more
// (client and server are separate processes: 10,000 each).
// The clients keep the default host dial pacer (HostDialRate): it paces
// redials only, never a client's first dial. Wall-clock figures move with
// whatever else runs on the machine; the CPU time this process spends per
// client in each phase (the -cpu-us metrics) is steadier.
func BenchmarkSupervisedScale(b *testing.B) { supervisedScale(b, false) }

// BenchmarkSupervisedScaleBalanced is BenchmarkSupervisedScale with the
// supervisor's balancer (Supervisor.Balancer) made before the clients
// start: every client that starts or stops invalidates its discovery, and
// each client pushes its health to it.
func BenchmarkSupervisedScaleBalanced(b *testing.B) { supervisedScale(b, true) }

func supervisedScale(b *testing.B, balanced bool) {
	const small, large = 1000, 10000
	testutil.RaiseFileLimit(b, 2*large)
	url, stopServer := testutil.ServerProcess(b)
	defer stopServer()
	for i := 0; i < b.N; i++ {
		s := runSupervised(b, url, small, balanced)
		l := runSupervised(b, url, large, balanced)
		for _, x := range []struct {
			suffix string
			n      int
			r      supervisedRun
		}{{"-1k", small, s}, {"-10k", large, l}} {
			b.ReportMetric(float64(x.r.connect.Milliseconds()), "ms-to-all-connected"+x.suffix)
			b.ReportMetric(float64(x.r.bare.Milliseconds()), "bare-ms-to-all-connected"+x.suffix)
			b.ReportMetric(x.r.connect.Seconds()/x.r.bare.Seconds(), "connect/bare"+x.suffix)
			b.ReportMetric(x.r.goroutines, "goroutines/client"+x.suffix)
			b.ReportMetric(x.r.bytes, "bytes/client"+x.suffix)
			b.ReportMetric(x.r.liveHeap, "live-heap-bytes/client"+x.suffix)
			b.ReportMetric(x.r.stack, "stack-bytes/client"+x.suffix)
			b.ReportMetric(float64(x.r.stop.Milliseconds()), "ms-to-stop"+x.suffix)
			b.ReportMetric(float64(x.r.left), "goroutines-left"+x.suffix)
			b.ReportMetric(x.r.connectCPU.Seconds()*1e6/float64(x.n), "connect-cpu-us/client"+x.suffix)
			b.ReportMetric(x.r.bareCPU.Seconds()*1e6/float64(x.n), "bare-cpu-us/client"+x.suffix)
			b.ReportMetric(x.r.stopCPU.Seconds()*1e6/float64(x.n), "stop-cpu-us/client"+x.suffix)
		}
		perClient := func(d time.Duration, n int) float64 { return d.Seconds() / float64(n) }
		b.ReportMetric(l.bytes/s.bytes, "bytes/client-10k/1k")
		b.ReportMetric(l.liveHeap/s.liveHeap, "live-heap/client-10k/1k")
		b.ReportMetric(l.stack/s.stack, "stack/client-10k/1k")
		b.ReportMetric(l.goroutines/s.goroutines, "goroutines/client-10k/1k")
		b.ReportMetric(perClient(l.connect, large)/perClient(s.connect, small), "connect/client-10k/1k")
		b.ReportMetric(perClient(l.stop, large)/perClient(s.stop, small), "stop/client-10k/1k")
		b.ReportMetric(perClient(l.connectCPU, large)/perClient(s.connectCPU, small), "connect-cpu/client-10k/1k")
		b.ReportMetric(perClient(l.stopCPU, large)/perClient(s.stopCPU, small), "stop-cpu/client-10k/1k")
	}
	b.ReportMetric(0, "ns/op")
}

// supervisedRun is one measurement of n supervised clients.
type supervisedRun struct {
	connect, bare       time.Duration // until all connected: through a supervisor, bare dials
	connectCPU, bareCPU time.Duration // this process's CPU time (user + system) in the same spans
	goroutines, bytes   float64       // per supervised client
	liveHeap, stack     float64       // per supervised client: bytes of live heap objects, of goroutine stacks
	stop, stopCPU       time.Duration // Supervisor.Stop: wall and CPU time
	left                int           // goroutines left after Stop and Shutdown
}

// runSupervised makes n bare coder/websocket dials (64 at a time, each with
// a reader goroutine) and closes them, then starts n clients with
// Supervisor.StartClient the same way (after making the supervisor's
// balancer if balanced), measures them and stops them.
func runSupervised(b *testing.B, url string, n int, balanced bool) supervisedRun {
	const workers = 64
	var r supervisedRun
	g0, _ := testutil.Settle()
	start, cpu := time.Now(), cpuTime(b)
	bare := make([]*websocket.Conn, n)
	parallel(n, workers, func(j int) {
		c, _, err := websocket.Dial(context.Background(), url, nil)
		if err != nil {
			b.Error(err)
			return
		}
		bare[j] = c
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	})
	r.bare, r.bareCPU = time.Since(start), cpuTime(b)-cpu
	for _, c := range bare {
		if c != nil {
			_ = c.CloseNow()
		}
	}

	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	sup, err := supervision.Start(sys)
	if err != nil {
		b.Fatal(err)
	}
	if balanced {
		if _, err := sup.Balancer(); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	g1, m1 := testutil.Settle()
	h1, s1 := heapAndStacks()
	start, cpu = time.Now(), cpuTime(b)
	parallel(n, workers, func(int) {
		if _, err := sup.StartClient(context.Background(), url, actors.WithHandler(func(actors.Inbound) {})); err != nil {
			b.Error(err)
		}
	})
	r.connect, r.connectCPU = time.Since(start), cpuTime(b)-cpu
	if got := len(sup.ListClients()); got != n {
		b.Fatalf("%d clients listed, want %d", got, n)
	}
	time.Sleep(200 * time.Millisecond)
	g2, m2 := testutil.Settle()
	h2, s2 := heapAndStacks()
	r.goroutines = float64(g2-g1) / float64(n)
	r.bytes = float64(m2-m1) / float64(n)
	r.liveHeap = (float64(h2) - float64(h1)) / float64(n)
	r.stack = (float64(s2) - float64(s1)) / float64(n)

	start, cpu = time.Now(), cpuTime(b)
	if err := sup.Stop(); err != nil {
		b.Fatal(err)
	}
	r.stop, r.stopCPU = time.Since(start), cpuTime(b)-cpu
	sys.Shutdown()
	time.Sleep(1500 * time.Millisecond) // Proto.Actor's dead-letter throttle sleeps 1 s
	g3, _ := testutil.Settle()
	r.left = g3 - g0
	return r
}

// heapAndStacks returns the bytes of live heap objects and of goroutine
// stacks, read right after testutil.Settle's collections. bytes/client
// counts the heap's spans in use (HeapInuse), which also holds the free
// slots of partly used spans: it moves with fragmentation, live heap does
// not.
func heapAndStacks() (liveHeap, stacks uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// cpuTime is the CPU time (user and system) this process has used: on a
// machine shared with other work it says what a phase cost better than
// the wall clock does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel runs fn(0..n-1) on at most workers goroutines.
func parallel(n, workers int, fn func(int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				fn(j)
			}
		}()
	}
	for j := 0; j < n; j++ {
		next <- j
	}
	close(next)
	wg.Wait()
}
