package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors/jsonrpc"
)

// serverEnv makes the test binary act as the server (see serveIfChild).
const serverEnv = "ZENWS_BENCH_SERVER"

// dropCommand makes the server close the connection at once, without a
// close frame: the abrupt drop of the reconnect workload.
const dropCommand = "__drop__"

// serve is the server's side of one connection: read, answer. It does as
// little as a server can per message, so that the client side bounds the
// rates measured.
func serve(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	ctx := context.Background()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageText && string(data) == dropCommand {
			return // CloseNow: no close frame
		}
		if err := conn.Write(ctx, typ, reply(data)); err != nil {
			return
		}
	}
}

// reply is the answer to data: a JSON-RPC response for a request, data
// itself for anything else.
func reply(data []byte) []byte {
	if len(data) == 0 || data[0] != '{' {
		return data
	}
	env, ok := jsonrpc.Peek(data)
	if !ok || env.ID == nil || env.Method == nil {
		return data
	}
	return append(append([]byte(`{"jsonrpc":"2.0","id":`), env.ID...), `,"result":true}`...)
}

// listen starts the server on 127.0.0.1 in this process and returns its
// ws:// URL and a function that stops it.
func listen() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("failed to listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "ws://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// ServeIfChild runs the server and exits when this process was started by
// serverProcess; otherwise it returns at once. TestMain calls it first.
func ServeIfChild() {
	if os.Getenv(serverEnv) != "1" {
		return
	}
	if err := raiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	url, stop, err := listen()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(url)
	// Serve until the parent closes stdin (or dies).
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	stop()
	os.Exit(0)
}

// serverProcess starts the running binary again as the server in its own
// process and returns its URL and a function that stops it and waits for
// it. The binary's TestMain must call ServeIfChild.
func serverProcess() (url string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("failed to start the server process: %w", err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	stop = func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	select {
	case url = <-lines:
	case <-time.After(10 * time.Second):
	}
	if !strings.HasPrefix(url, "ws://") {
		_ = cmd.Process.Kill()
		stop()
		return "", nil, errors.New("server process did not start: " + strings.TrimSpace(stderr.String()))
	}
	return url, stop, nil
}
