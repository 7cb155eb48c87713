package testutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/zenws/zenws/transport/wstest"
)

// serverProcessEnv makes a test binary act as an echo server in its own
// process (see ServerProcess), so that client-side memory can be measured
// without the server's share.
const serverProcessEnv = "ZENWS_ECHO_SERVER_PROCESS"

// serveIfChild runs the echo server and exits when this process was started
// by ServerProcess. VerifyTestMain calls it first.
func serveIfChild() {
	if os.Getenv(serverProcessEnv) != "1" {
		return
	}
	srv := wstest.NewServer(wstest.WithCaptureLimit(1))
	fmt.Println(srv.URL())
	// Serve until the parent closes stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	srv.Close()
	os.Exit(0)
}

// ServerProcess starts the running test binary again as a wstest echo
// server in its own process and returns its URL and a function that stops
// it. The package's TestMain must call VerifyTestMain.
func ServerProcess(tb testing.TB) (url string, stop func()) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serverProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tb.Fatalf("server process: %v", err)
	}
	return strings.TrimSpace(line), func() { _ = stdin.Close(); _ = cmd.Wait() }
}

// RaiseFileLimit raises the soft limit on open files to want, if the hard
// limit allows.
func RaiseFileLimit(tb testing.TB, want uint64) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur < want {
		lim.Cur = min(want, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			tb.Fatal(err)
		}
	}
}

// Settle collects garbage and returns the goroutine count and the bytes of
// heap in use plus goroutine stacks.
func Settle() (goroutines int, bytes uint64) {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse + ms.StackInuse
}
