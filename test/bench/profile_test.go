package bench

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

var (
	profileDir       = flag.String("profile", "", "TestProfile: write profiles of one contender into this directory")
	profileContender = flag.String("profile.contender", "zenws", "TestProfile: the contender to profile")
)

// TestProfile writes, for one contender, the profiles behind the notes in
// docs/performance.md: CPU profiles of the send workload at 64 B and 8 KiB
// (cpu-send.pprof, cpu-send-8k.pprof) and of the round-trip workload with
// 64 callers (cpu-callers.pprof), the allocations of 5,000 sequential calls
// (allocs-call-base.pprof and allocs-call.pprof, read with -diff_base) and
// the heap in use with 1,000 idle connections open (heap-idle.pprof); it
// logs the rates and the heap and stack bytes per idle connection.
//
//	go test -run TestProfile -v -profile /tmp/prof [-profile.contender recws]
//	go tool pprof -top /tmp/prof/cpu-send.pprof
func TestProfile(t *testing.T) {
	if *profileDir == "" {
		t.Skip("needs -profile DIR")
	}
	var c Contender
	for _, x := range Contenders {
		if x.Name == *profileContender {
			c = x
		}
	}
	if c.Open == nil {
		t.Fatalf("no contender %q", *profileContender)
	}
	if err := os.MkdirAll(*profileDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := raiseFileLimit(); err != nil {
		t.Fatal(err)
	}
	runtime.MemProfileRate = 1
	url, stop, err := serverProcess()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lib, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	prefix := strings.NewReplacer("/", "-", " ", "-").Replace(c.Name) + "-"
	write := func(name string, fn func(f *os.File) error) {
		f, err := os.Create(filepath.Join(*profileDir, prefix+name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := fn(f); err != nil {
			t.Fatal(err)
		}
	}

	// Idle first: the other workloads' goroutines would leave the stack
	// pool and the heap in another state.
	const n = 1000
	heap0, stack0 := heapStack()
	conns := make([]Conn, n)
	parallel(n, 500, func(i int) {
		conn, err := lib.Dial(ctx, url, func() {})
		if err != nil {
			t.Error(err)
			return
		}
		conns[i] = conn
	})
	time.Sleep(200 * time.Millisecond)
	heap1, stack1 := heapStack()
	t.Logf("idle: heap %.1f KiB + stacks %.1f KiB per connection",
		(float64(heap1)-float64(heap0))/n/1024, (float64(stack1)-float64(stack0))/n/1024)
	write("heap-idle.pprof", func(f *os.File) error { return pprof.Lookup("heap").WriteTo(f, 0) })
	parallel(n, 500, func(i int) {
		if conns[i] != nil {
			_ = conns[i].Close()
		}
	})

	runtime.MemProfileRate = 512 * 1024 // the default: keep the CPU profile honest
	write("cpu-send.pprof", func(f *os.File) error {
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		rate, err := sendRate(ctx, lib, url, 64, 200000)
		t.Logf("send 64 B: %.0f msgs/s", rate)
		return err
	})
	write("cpu-send-8k.pprof", func(f *os.File) error {
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		rate, err := sendRate(ctx, lib, url, 8192, 40000)
		t.Logf("send 8 KiB: %.0f msgs/s", rate)
		return err
	})
	write("cpu-callers.pprof", func(f *os.File) error {
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		cfg := Config{Calls: 10000, AllocCalls: 1, Callers: 64, CallsEach: 2000}
		vals, err := roundTrip(ctx, lib, url, cfg)
		t.Logf("round trip: p50 %v, %d callers %.0f calls/s", time.Duration(vals["rtt p50"]), cfg.Callers, vals["callers"])
		return err
	})

	runtime.MemProfileRate = 1
	conn, err := lib.Dial(ctx, url, func() {})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if err := conn.Call(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	write("allocs-call-base.pprof", func(f *os.File) error { return pprof.Lookup("allocs").WriteTo(f, 0) })
	for i := 0; i < 5000; i++ {
		if err := conn.Call(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	write("allocs-call.pprof", func(f *os.File) error { return pprof.Lookup("allocs").WriteTo(f, 0) })
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}

}

// heapStack is settle's figure split: heap in use and goroutine stacks.
func heapStack() (heap, stacks uint64) {
	settle()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}
