package nodews

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// Values of actors' unexported tuning constants that these tests rely on
// (documented on the options that use them).
const (
	minStableAfter    = 10 * time.Millisecond // Config.StableAfter's minimum
	defaultRetryCount = 3                     // WithRetryCount's default
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// debianNodePath is where Debian's node-* packages put their modules.
const debianNodePath = "/usr/share/nodejs"

// requireNode returns the environment for node with `ws` resolvable, or
// skips the test (fails it under CI=true) when node or ws is missing.
func requireNode(t *testing.T) []string {
	t.Helper()
	env := append(os.Environ(), "NODE_PATH="+strings.Trim(debianNodePath+":"+os.Getenv("NODE_PATH"), ":"))
	missing := func(why string) {
		msg := "the Node.js ws peer is missing: " + why + " (install: apt-get install -y nodejs node-ws)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; under CI=true this is a failure")
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("no node on PATH")
	}
	cmd := exec.Command("node", "-e", "require('ws')")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		missing("require('ws') failed: " + strings.SplitN(string(out), "\n", 2)[0])
	}
	return env
}

// venue starts venue.js on a free 127.0.0.1 port and returns its ws:// URL.
// The process is killed when the test ends.
func venue(t *testing.T) string {
	t.Helper()
	return nodeVenue(t, "venue.js")
}

// nodeVenue starts script (a file next to this one) on a free 127.0.0.1
// port with args after the port, and returns its ws:// URL. The process is
// killed when the test ends.
func nodeVenue(t *testing.T, script string, args ...string) string {
	t.Helper()
	port, _ := startNode(t, script, "0", args...)
	return "ws://127.0.0.1:" + port + "/"
}

// startNode starts script on 127.0.0.1:port ("0": any free port) with args
// after the port, waits until it listens, and returns its port and a stop
// that kills it (safe to call more than once; it also runs when the test
// ends). The process exits by itself when its stdin closes.
func startNode(t *testing.T, script, port string, args ...string) (string, func()) {
	t.Helper()
	env := requireNode(t)
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("node", append([]string{filepath.Join(filepath.Dir(file), script), port}, args...)...)
	cmd.Env = env
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe() // closed on exit: the venue exits too
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
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = stdin.Close()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		got, ok := strings.CutPrefix(strings.TrimSpace(s), "LISTENING ")
		if !ok || (port != "0" && got != port) {
			t.Fatalf("%s did not start on port %s: %q; stderr: %s", script, port, s, stderr.String())
		}
		return got, stop
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not start within 10 s; stderr: %s", script, stderr.String())
		return "", nil
	}
}

func ctx(t *testing.T) context.Context { return testutil.Context(t, 15*time.Second) }

// inbox collects what a client's handler gets.
type inbox chan actors.Inbound

func (in inbox) handler(m actors.Inbound) {
	select {
	case in <- m:
	default:
	}
}

func (in inbox) next(t *testing.T, match func(actors.Inbound) bool) actors.Inbound {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-in:
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatal("no matching message within 10 s")
		}
	}
}

func connect(t *testing.T, url string, opts ...actors.Option) (*actors.Client, inbox) {
	t.Helper()
	in := make(inbox, 256)
	opts = append([]actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(200 * time.Millisecond),
		actors.WithTimeout(2 * time.Second), actors.WithHandler(in.handler),
	}, opts...)
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), url, opts...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, in
}

func TestTransportEchoWithNodeWS(t *testing.T) {
	url := venue(t)
	c, err := transport.Dial(ctx(t), url, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{transport.MessageText, []byte("plain text")},
		{transport.MessageBinary, []byte{0, 1, 2, 0xff}},
		{transport.MessageBinary, bytes.Repeat([]byte("z"), 1<<20)}, // ws fragments nothing, but 64-bit lengths
	} {
		if err := c.Write(ctx(t), m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, data, err := c.Read()
		if err != nil || typ != m.typ || !bytes.Equal(data, m.data) {
			t.Fatalf("echo of %d bytes: %v %d bytes %v", len(m.data), typ, len(data), err)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close handshake with ws: %v", err)
	}
}

func TestClientSendAndCallWithNodeWS(t *testing.T) {
	c, in := connect(t, venue(t))
	if err := c.Send(ctx(t), []byte("hello node")); err != nil {
		t.Fatal(err)
	}
	in.next(t, func(m actors.Inbound) bool { return string(m.Data) == "hello node" })
	res, err := c.Call(ctx(t), "echo", map[string]any{"x": 1})
	if err != nil || string(res) != `{"x":1}` {
		t.Fatalf("Call echo = %s, %v", res, err)
	}
	_, err = c.Call(ctx(t), "fail", map[string]any{"order": 7})
	var rpc *actors.RPCError
	if !errors.As(err, &rpc) || rpc.Code != 10009 {
		t.Fatalf("Call fail = %v, want an RPCError 10009", err)
	}
	_, err = c.Call(ctx(t), "no/such", nil)
	if !errors.As(err, &rpc) || rpc.Code != -32601 {
		t.Fatalf("Call of an unknown method = %v", err)
	}
}

func TestSubscribeWithNodeWS(t *testing.T) {
	c, in := connect(t, venue(t))
	if err := c.Subscribe(ctx(t), "book.BTC-PERPETUAL", "trades.ETH"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for len(seen) < 2 || seen["book.BTC-PERPETUAL"] < 3 || seen["trades.ETH"] < 3 {
		m := in.next(t, func(m actors.Inbound) bool { return m.Kind == actors.KindNotification })
		seen[m.Channel]++
	}
	if got := c.Subscriptions(); len(got) != 2 {
		t.Fatalf("Subscriptions = %v", got)
	}
}

// The venue pings; the client's pong reaches it (ws emits 'pong').
func TestServerPingAnsweredWithNodeWS(t *testing.T) {
	c, _ := connect(t, venue(t))
	res, err := c.Call(ctx(t), "server_ping", map[string]string{"payload": "p-123"})
	if err != nil || string(res) != `{"pong":"p-123"}` {
		t.Fatalf("server_ping = %s, %v", res, err)
	}
}

func TestCloseCodeFromNodeWS(t *testing.T) {
	c, _ := connect(t, venue(t))
	gen := c.Health().Generation
	_, _ = c.Call(testutil.Context(t, time.Second), "close", map[string]any{"code": 4001, "reason": "venue says bye"})
	testutil.Eventually(t, 10*time.Second, "a reconnect", func() bool {
		return c.Health().Generation > gen && c.State() == actors.StateConnected
	})
	var ce *transport.CloseError
	if err := c.Health().LastError; !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "venue says bye" {
		t.Fatalf("LastError = %v, want the venue's close 4001", err)
	}
}

// The node process destroys the TCP connection: the client reconnects and
// restores its subscriptions on the new connection.
func TestReconnectAfterNodeDropsTheConnection(t *testing.T) {
	c, in := connect(t, venue(t), actors.WithRetryCount(5))
	if err := c.Subscribe(ctx(t), "book.BTC"); err != nil {
		t.Fatal(err)
	}
	gen := c.Health().Generation
	_, _ = c.Call(testutil.Context(t, time.Second), "drop", nil)
	testutil.Eventually(t, 10*time.Second, "a reconnect", func() bool {
		return c.Health().Generation > gen && c.State() == actors.StateConnected
	})
	in.next(t, func(m actors.Inbound) bool { return m.Generation > gen && m.Channel == "book.BTC" })
	res, err := c.Call(ctx(t), "stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Connections, Subscribes int }
	if err := json.Unmarshal(res, &st); err != nil || st.Connections != 2 || st.Subscribes != 2 {
		t.Fatalf("venue stats %s (%v): want 2 connections and 2 subscribes", res, err)
	}
}
