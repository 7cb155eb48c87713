package opspage_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/opspage"
	"github.com/zenws/zenws/internal/testutil"
)

// requireChromium returns Debian's chromium, or skips the test (fails it
// under CI=true, where .ci/run installs it) when it is missing.
func requireChromium(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is missing (install: apt-get install -y chromium)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; under CI=true this is a failure")
		}
		t.Skip(msg)
	}
	return bin
}

// chromium runs headless chromium on args with a deadline and returns its
// standard output. Its whole process group is killed when it ends or
// times out, so no renderer outlives the test. It reaches nothing but
// 127.0.0.1: every other address goes to a proxy on a closed port.
func chromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-pings",
		"--proxy-server=http://127.0.0.1:9", "--hide-scrollbars", "--window-size=1500,900",
	}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what is left of its group
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// The page in a real browser: chromium renders the page of a real pool
// (connected clients, one whose venue went away, one degraded by a refused
// channel, a hostile label), takes a screenshot, and its DOM shows the
// rows, their states, the NotPicked reasons and the label as text.
func TestBrowserRendersThePage(t *testing.T) {
	bin := requireChromium(t)
	sys := testutil.NewSystem(t)
	p := newPool(t, sys, []string{"deribit-md", "deribit-orders", hostileLabel, "binance-md"}, 2)
	ctx := testutil.Context(t, 10*time.Second)
	for _, c := range p.clients {
		if _, err := c.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 40; i++ {
		if _, err := p.bal.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	var md bool
	var hostile string
	for _, c := range p.clients {
		switch h := c.Health(); {
		case h.Label == "deribit-md" && !md:
			md = true
			if err := c.Subscribe(ctx, "ticker.BTC-PERPETUAL.raw", "book.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.raw"); err != nil {
				t.Fatal(err)
			}
		case h.Label == hostileLabel && hostile == "":
			hostile = c.PID().Address + "/" + c.PID().Id
			if err := c.Subscribe(ctx, "ticker.ETH-PERPETUAL.raw"); err != nil {
				t.Fatal(err)
			}
			_ = c.Subscribe(ctx, "bad.<svg onload=alert(3)>") // refused
		}
	}
	binance := p.servers[3]
	binance.RefuseHandshakes(http.StatusServiceUnavailable)
	binance.DropAll()
	base := serve(t, opspage.New(sys, map[string]*balancer.Balancer{"orders": p.bal}))
	testutil.Eventually(t, 10*time.Second, "binance's clients not connected, the hostile one degraded", func() bool {
		down, degraded := 0, 0
		for _, c := range page(t, base).Pools[0].Clients {
			if strings.HasPrefix(c.NotPicked, "not connected") {
				down++
			}
			if c.Degraded && c.Label == hostileLabel {
				degraded++
			}
		}
		return down == 2 && degraded == 1
	})
	details := base + "?" + url.Values{"pool": {"orders"}, "client": {hostile}}.Encode()
	testutil.Eventually(t, 10*time.Second, "the refused channel failed", func() bool {
		cl := page(t, details+"&format=json").Pools[0].Clients[0]
		return cl.Channels != nil && cl.Channels.Failed == 1 && cl.Channels.Active == 1
	})

	shot := filepath.Join(t.TempDir(), "opspage.png")
	chromium(t, bin, "--screenshot="+shot, base)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10<<10 {
		t.Fatalf("screenshot %s: %v %v", shot, fi, err)
	}
	t.Logf("screenshot: %s", shot)
	if dst := os.Getenv("ZENWS_OPSPAGE_SCREENSHOT"); dst != "" { // to refresh docs/img/opspage.png
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(dst, b, 0o644)
		}
	}

	dom := string(chromium(t, bin, "--dump-dom", base))
	got := rows(dom)
	if len(got) != 8 {
		t.Fatalf("the browser shows %d client rows, want 8:\n%s", len(got), tail(dom, 3000))
	}
	states := map[string]int{}
	reasons := map[string]int{}
	for _, r := range got {
		states[r[2]]++
		reasons[r[3]]++
	}
	if states["connected"] != 6 || states["reconnecting"]+states["connecting"] != 2 {
		t.Errorf("states in the browser: %v", states)
	}
	if reasons["degraded: ranked after healthy clients"] != 1 || reasons["not connected (reconnecting)"]+reasons["not connected (connecting)"] != 2 {
		t.Errorf("reasons in the browser: %v", reasons)
	}
	if !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x") {
		t.Error("the hostile label is not shown as text")
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, "<b>x") {
		t.Error("the hostile label became markup")
	}
	if !strings.Contains(dom, "3: 3 active") {
		t.Error("the subscribed client's channels are not shown")
	}

	detailsShot := filepath.Join(filepath.Dir(shot), "opspage-details.png")
	chromium(t, bin, "--screenshot="+detailsShot, details)
	t.Logf("screenshot of a details view: %s", detailsShot)
	if dst := os.Getenv("ZENWS_OPSPAGE_DETAILS_SCREENSHOT"); dst != "" {
		if b, err := os.ReadFile(detailsShot); err == nil {
			_ = os.WriteFile(dst, b, 0o644)
		}
	}
	dom = string(chromium(t, bin, "--dump-dom", details))
	for _, want := range []string{"channels (2: 1 active, 0 pending, 1 failed", "bad.&lt;svg onload=alert(3)&gt;", "degraded: ranked after healthy clients", "&lt;img src=x onerror=alert(2)&gt;"} {
		if !strings.Contains(dom, want) {
			t.Errorf("details view: %q missing", want)
		}
	}
	if strings.Contains(dom, "<svg") || strings.Contains(dom, "<img") {
		t.Error("details view: a channel name or an error became markup")
	}
}
