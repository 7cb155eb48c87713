package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

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
	for _, args := range [][]string{{"-duration", "10ms"}, {"-clients", "0"}, {"-log-level", "loud"}, {"extra"}, {"-nope"}} {
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
	if !strings.Contains(out.String(), "stopped early") {
		t.Fatalf("summary does not say it stopped early:\n%s", out.String())
	}
}
