package bench

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// raiseFileLimit raises this process's soft limit on open files to its hard
// limit: 10,000 connections need 10,000 descriptors on each side.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("failed to read the file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("failed to raise the file limit: %w", err)
		}
	}
	return nil
}

// fileLimit is this process's soft limit on open files.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}

// settle collects garbage and returns the goroutine count and the bytes of
// heap in use plus goroutine stacks.
func settle() (goroutines int, bytes uint64) {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse + ms.StackInuse
}

// waitGoroutines waits, at most d, until no more than want goroutines run,
// and returns how many are left over.
func waitGoroutines(want int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return max(0, n-want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mallocs is the process's count of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}
