package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" { // a node of a -nodes run started by a test
		os.Exit(nodeMain(spec))
	}
	if args := os.Getenv(parentEnv); args != "" { // the demo itself, run by TestNodesDieWithTheirParent
		os.Exit(runMain(strings.Fields(args), os.Stdout, os.Stderr))
	}
	testutil.VerifyTestMain(m)
}

// parentEnv runs the test binary as the demo with these arguments.
const parentEnv = "ZENWS_DEMO_TEST_PARENT"

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// A short run passes its own invariants, and its metrics endpoint serves
// the library's instruments while it runs.
func TestShortRunPassesAndServesMetrics(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runMain([]string{"-duration", "6s", "-clients", "3", "-metrics", addr,
			"-log-file", filepath.Join(dir, "demo.log"), "-record", filepath.Join(dir, "rec"), "-refresh", "200ms"}, &out, &errOut)
	}()
	var body string
	testutil.Eventually(t, 10*time.Second, "metrics with the client and balancer instruments", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		for _, name := range []string{"zenws_client_connects", "zenws_client_request_duration", "zenws_client_reconnects",
			"zenws_client_notifications", "zenws_client_pending", "zenws_balancer_eligible"} {
			if !strings.Contains(body, name) {
				return false
			}
		}
		return true
	})
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not end")
	}
	if code != 0 || !strings.Contains(out.String(), "PASS") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	// 6 s: a fault every 700 ms until 2.5 s before the end: all four kinds.
	for _, kind := range []string{"abrupt drop", "close 1001", "half-open (stalled)", "refused reconnects"} {
		if !strings.Contains(out.String(), kind+" on c") {
			t.Errorf("no %q fault injected:\n%s", kind, out.String())
		}
	}
	for _, want := range []string{"balanced calls", "notifications", "worst p99", "every client is connected"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "rec.*.jsonl"))
	if len(matches) != 3 {
		t.Errorf("recordings %v, want one per client", matches)
	}
}

func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{{"-duration", "10ms"}, {"-clients", "0"}, {"-log-level", "loud"}, {"extra"}, {"-nope"},
		{"-nodes", "1"}, {"-nodes", "3", "-url", "ws://127.0.0.1:1"}, {"-nodes", "3", "-duration", "2s"}, {"-http", "127.0.0.1:0"}} {
		var out, errOut bytes.Buffer
		if code := runMain(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// Ctrl-C: the run stops at once, cleanly, with a summary.
func TestInterruptStopsCleanly(t *testing.T) {
	cfg, err := parseFlags([]string{"-duration", "60s", "-clients", "2", "-log-file", filepath.Join(t.TempDir(), "log")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	start := time.Now()
	var out bytes.Buffer
	sum, err := run(ctx, cfg, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Fatalf("the interrupted run took %v", el)
	}
	if !sum.interrupted || !sum.ok() || sum.snap.calls == 0 {
		t.Fatalf("summary %+v", sum)
	}
	sum.print(&out)
	if !strings.Contains(out.String(), "stopped early") || !strings.Contains(out.String(), "result           INCOMPLETE") ||
		strings.Contains(out.String(), "PASS") {
		t.Fatalf("summary does not say it stopped early, not a pass:\n%s", out.String())
	}
	if code := exitCode(ctx, sum, nil, io.Discard, io.Discard); code != exitInterrupted {
		t.Fatalf("exit code of an interrupted run: %d, want %d", code, exitInterrupted)
	}
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var out []int
	for _, e := range ents {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so after the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, id)
		}
	}
	return out
}

// alive reports whether pid is a process that has not ended (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// -nodes 3: three processes of the test binary (TestMain runs them as
// nodes), calls crossing nodes, a node killed and started again, the
// operator's page over every node's clients, a PASS, and no process left.
func TestNodesRunPassesAcrossProcesses(t *testing.T) {
	addr := freeAddr(t)
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runMain([]string{"-nodes", "3", "-duration", "10s", "-http", addr, "-refresh", "200ms",
			"-log-file", filepath.Join(t.TempDir(), "demo.log")}, &out, &errOut)
	}()
	pids := map[int]bool{}
	var page struct {
		Pools []struct {
			Clients []struct {
				Node string `json:"node"`
			} `json:"clients"`
		} `json:"pools"`
	}
	nodesSeen := map[string]bool{}
	var code int
	hang := time.After(60 * time.Second)
wait:
	for {
		select {
		case code = <-done:
			break wait
		case <-hang:
			t.Fatalf("the demo did not end\nstdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
		case <-time.After(200 * time.Millisecond):
		}
		for _, p := range childrenOf(t, os.Getpid()) {
			pids[p] = true
		}
		if len(nodesSeen) < 3 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/zenws/?format=json", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				if json.NewDecoder(resp.Body).Decode(&page) == nil && len(page.Pools) == 1 {
					clear(nodesSeen)
					for _, c := range page.Pools[0].Clients {
						nodesSeen[c.Node] = true
					}
				}
				resp.Body.Close()
			}
			cancel()
		}
	}
	if code != 0 || !strings.Contains(out.String(), "result           PASS") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if strings.Contains(errOut.String(), "DATA RACE") { // the nodes are this test binary, -race too
		t.Errorf("a node reported a data race:\n%s", errOut.String())
	}
	m := regexp.MustCompile(`(\d+) calls through other nodes' connections \((\d+) served`).FindStringSubmatch(out.String())
	if m == nil || m[1] == "0" || m[2] == "0" {
		t.Errorf("no call crossed nodes:\n%s", out.String())
	}
	for _, want := range []string{"n3 killed (SIGKILL)", "restarted at", "used again after", "every client is connected"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if len(nodesSeen) != 3 { // "local" and the two other nodes' addresses
		t.Errorf("the operator's page showed clients of %v, want 3 nodes", nodesSeen)
	}
	if len(pids) < 4 { // three nodes and the restarted one
		t.Errorf("saw node processes %v, want at least 4", pids)
	}
	for p := range pids {
		if alive(p) {
			t.Errorf("node process %d is left after the run", p)
		}
	}
}

// The demo SIGKILLed: its nodes see their stdin close and leave; none is
// orphaned.
func TestNodesDieWithTheirParent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), parentEnv+"=-nodes 3 -duration 60s -refresh 200ms -log-file "+filepath.Join(t.TempDir(), "demo.log"))
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	var nodes []int
	testutil.Eventually(t, 45*time.Second, "the nodes formed their pool", func() bool {
		nodes = childrenOf(t, cmd.Process.Pid)
		return len(nodes) == 3 && strings.Contains(out.String(), "zenws demo  3 nodes")
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	killed = true
	testutil.Eventually(t, 20*time.Second, "the nodes left with their parent", func() bool {
		for _, p := range nodes {
			if alive(p) {
				return false
			}
		}
		return true
	})
}
