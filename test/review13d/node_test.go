package review13d

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
)

type nodePeer struct {
	URL   string
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
}

func (n *nodePeer) send(idx int, json string) {
	fmt.Fprintf(n.stdin, "send %d %s\n", idx, json)
}

// startNodePeer runs peer.js; skips without node or ws (fails under CI=true).
func startNodePeer(t *testing.T) *nodePeer {
	t.Helper()
	env := append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no node")
		}
		t.Skip("no node")
	}
	cmd := exec.Command("node", "peer.js")
	cmd.Env = env
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &nodePeer{stdin: stdin}
	port := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			n.mu.Lock()
			n.lines = append(n.lines, l)
			n.mu.Unlock()
			if strings.HasPrefix(l, "listening ") {
				port <- strings.TrimPrefix(l, "listening ")
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
	})
	select {
	case p := <-port:
		n.URL = "ws://127.0.0.1:" + p + "/"
	case <-time.After(10 * time.Second):
		t.Fatal("node peer did not start (is node-ws installed?)")
	}
	return n
}

// Against a Node ws venue: an id reused after a timeout takes the late
// answer of the request that gave up (as TestReusedIDTakesLateAnswer).
func TestNodeReusedIDTakesLateAnswer(t *testing.T) {
	n := startNodePeer(t)
	c := dial(t, n.URL, nil)
	_, err := c.Request(ctxT(t, 300*time.Millisecond), []byte(`{"jsonrpc":"2.0","id":"order-1","method":"hold"}`))
	if err == nil {
		t.Fatal("first: answered")
	}
	type res struct {
		resp string
		err  error
	}
	rc := make(chan res, 1)
	go func() {
		r, err := c.Request(ctxT(t, 10*time.Second), []byte(`{"jsonrpc":"2.0","id":"order-1","method":"hold"}`))
		rc <- res{string(r), err}
	}()
	eventually(t, 5*time.Second, "second pending", func() bool { return c.Health().Pending == 1 })
	n.send(0, `{"jsonrpc":"2.0","id":"order-1","result":"answer to the first"}`)
	n.send(0, `{"jsonrpc":"2.0","id":"order-1","result":"answer to the second"}`)
	r := <-rc
	if strings.Contains(r.resp, "answer to the first") {
		t.Errorf("the reused id took the late answer of the request that gave up: %s", r.resp)
	}
	_ = actors.ErrTimeout
}
