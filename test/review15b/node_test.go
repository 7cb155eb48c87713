package review15b

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/feed"
)

// startNode starts a script of this package on Node (Debian's node-ws) and
// returns its ws:// URL; skipped when node or ws is missing (failed under
// CI=true).
func startNode(t *testing.T, script string, args ...string) string {
	t.Helper()
	env := append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no node")
		}
		t.Skip("no node")
	}
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("node", append([]string{filepath.Join(filepath.Dir(file), script), "0"}, args...)...)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() { s, _ := bufio.NewReader(stdout).ReadString('\n'); line <- s }()
	select {
	case s := <-line:
		port, ok := strings.CutPrefix(strings.TrimSpace(s), "LISTENING ")
		if !ok {
			t.Fatalf("%s: %q", script, s)
		}
		return "ws://127.0.0.1:" + port + "/"
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not start", script)
		return ""
	}
}

// A Node ws venue that kills both copies at once every 200 ms while the book
// moves every millisecond: on the consumer's side no duplicate, nothing out
// of order, a gap notice wherever the stream does not follow.
func TestFeedNodeBothCopiesKilled(t *testing.T) {
	url := startNode(t, "bookkill.js", "200")
	f := newFPool(t, feed.WithCopies(2))
	f.add(url, 2)
	if err := f.pool.Subscribe(ctx(t), "book.N.100ms", "book.M.100ms"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	_ = f.pool.Stop()
	msgs := f.in.snapshot()
	if bad := checkFeed(msgs); len(bad) > 0 {
		t.Errorf("consumer sees:\n%s", strings.Join(bad, "\n"))
	}
	gaps := f.in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap })
	t.Logf("%d messages, %d gap notices", len(msgs), gaps)
	if gaps == 0 {
		t.Error("both copies killed 10 times while the book moved: no gap notice")
	}
}
