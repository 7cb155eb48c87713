package reviewfailover

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// nodePeer starts hostile.js; it returns the two servers' URLs (with the
// secret in the query) and the frames it reported so far.
func nodePeer(t *testing.T) ([]string, func() []string) {
	t.Helper()
	env := append(os.Environ(), "NODE_PATH="+strings.Trim("/usr/share/nodejs:"+os.Getenv("NODE_PATH"), ":"))
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on PATH")
	}
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("node", filepath.Join(filepath.Dir(file), "hostile.js"))
	cmd.Env = env
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
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
	var mu sync.Mutex
	var frames []string
	ports := make(chan []string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if p, ok := strings.CutPrefix(line, "LISTENING "); ok {
				ports <- strings.Fields(p)
				continue
			}
			mu.Lock()
			frames = append(frames, line)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("hostile.js stderr:\n%s", stderr.String())
		}
	})
	var urls []string
	select {
	case ps := <-ports:
		for _, p := range ps {
			urls = append(urls, "ws://127.0.0.1:"+p+"/ws?api_key="+secret)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("hostile.js did not start: %s", stderr.String())
	}
	return urls, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), frames...)
	}
}

func countFrames(frames []string, method string) int {
	n := 0
	for _, f := range frames {
		if strings.HasSuffix(f, " "+method) {
			n++
		}
	}
	return n
}

// The Node peer: an order whose connection is terminated after its frame
// is sent once (ErrDisconnected, no ErrMaxAttempts); a retry-safe call
// whose connections close with the URL (the secret) as the reason fails
// over to both servers and its error keeps the loss; no error shows the
// secret.
func TestGuardNodePeer(t *testing.T) {
	urls, frames := nodePeer(t)
	sys := testutil.NewSystem(t)
	var pids []*actor.PID
	var clients []*actors.Client
	for _, u := range urls {
		c, err := actors.Connect(testutil.Context(t, 10*time.Second), sys, u, actors.WithRetryDelay(20*time.Millisecond))
		if err != nil {
			noSecret(t, err)
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		pids = append(pids, c.PID())
		clients = append(clients, c)
	}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	eligible := func() bool {
		k := 0
		for _, h := range b.PoolHealth() {
			if h.Eligible {
				k++
			}
		}
		return k == 2
	}
	testutil.Eventually(t, 5*time.Second, "2 eligible", eligible)
	ctx := testutil.Context(t, 10*time.Second)

	_, err = b.Call(ctx, "private/buy", map[string]any{"label": "n1"})
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Errorf("order: %v; want ErrDisconnected, not ErrMaxAttempts", err)
	}
	testutil.Eventually(t, 5*time.Second, "the frame reported", func() bool { return countFrames(frames(), "private/buy") >= 1 })
	time.Sleep(100 * time.Millisecond)
	if n := countFrames(frames(), "private/buy"); n != 1 {
		t.Errorf("the order reached the servers %d times, want 1", n)
	}

	testutil.Eventually(t, 5*time.Second, "2 eligible again", eligible)
	_, err = b.Call(ctx, "public/get_time", nil, balancer.CallMaxAttempts(2))
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || !errors.Is(err, balancer.ErrMaxAttempts) && countFrames(frames(), "public/get_time") == 2 {
		t.Errorf("retry-safe call: %v; want ErrDisconnected (ErrMaxAttempts after 2 frames)", err)
	}
	for _, c := range clients {
		noSecret(t, c.Health().LastError)
	}
}
