package review15

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
)

// startNode runs script (next to this file) with port 0 and returns its
// ws:// URL.
func startNode(t *testing.T, script string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no node")
		}
		t.Skip("no node on PATH (apt-get install nodejs node-ws)")
	}
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("node", filepath.Join(filepath.Dir(file), script), "0")
	cmd.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs:"+os.Getenv("NODE_PATH"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
	})
	select {
	case s := <-lines:
		port, ok := strings.CutPrefix(s, "LISTENING ")
		if !ok {
			t.Fatalf("%s: %q", script, s)
		}
		return "ws://127.0.0.1:" + port + "/"
	case <-time.After(10 * time.Second):
		t.Skip(script + " did not start (node-ws missing?)")
		return ""
	}
}

// Against Node's ws: lost changes, duplicates, an early snapshot and a
// dropped connection, over and over; the consumer's book never takes a
// change that does not follow, and the counters match the notices.
func TestNodeBookUnderFaults(t *testing.T) {
	url := startNode(t, "book.js")
	in := &inbox{}
	c := connect(t, url, deribitBase(in.handler)...)
	subscribeBook(t, c, in, book)
	for r := 0; r < 6; r++ {
		time.Sleep(50 * time.Millisecond)
		var err error
		switch r % 3 {
		case 0:
			_, err = c.Call(ctx(t), "ctl/skip", map[string]int{"n": 3})
		case 1:
			if _, err = c.Call(ctx(t), "ctl/dupe", nil); err == nil {
				_, err = c.Call(ctx(t), "ctl/early", nil)
			}
			if err == nil {
				_, err = c.Call(ctx(t), "ctl/skip", map[string]int{"n": 1})
			}
		case 2:
			gen := c.Health().Generation
			_, err = c.Call(ctx(t), "ctl/drop", nil)
			waitFor(t, 5*time.Second, "reconnected", c, in, func() bool { return c.Health().Generation > gen })
		}
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		waitFor(t, 5*time.Second, "back in sync after the gap notice", c, in, func() bool {
			msgs := in.snapshot()
			return in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap }) >= r+1 && chanState(c, book) == actors.ChannelActive && len(msgs) > 0 && !msgs[len(msgs)-1].Snapshot && msgs[len(msgs)-1].Kind == actors.KindNotification
		})
		if g := in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap }); g != r+1 {
			msgs := in.snapshot()
			t.Errorf("round %d (fault %d): %d gap notices so far, want %d\n%s", r, r%3, g, r+1, dump(msgs[len(msgs)-8:], 8))
		}
	}
	time.Sleep(50 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
	h := c.Health()
	if g := in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap }); uint64(g) != h.SequenceGaps || g < 6 {
		var gs []string
		for _, m := range msgs {
			if m.Kind == actors.KindGap {
				gs = append(gs, fmt.Sprintf("%+v", *m.Gap))
			}
		}
		t.Fatalf("%d KindGap delivered, SequenceGaps %d (6 faults), %d snapshots, resyncs %d, dropped %d: %v", g, h.SequenceGaps, in.count(isSnap(book)), h.Resyncs, h.SequenceDropped, gs)
	}
	t.Logf("gaps %d resyncs %d dropped %d generation %d", h.SequenceGaps, h.Resyncs, h.SequenceDropped, h.Generation)
}
