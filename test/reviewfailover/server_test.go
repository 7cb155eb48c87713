package reviewfailover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// secret is in every client's URL query: no error may show it.
const secret = "SECRETKEY-7f3a9"

// frame is one data frame a hostile server received.
type frame struct {
	server int
	conn   *hconn
	data   []byte
}

// venue is what several hostile servers share: the frames they saw, in
// order, and the behaviour (called for each data frame, on the server's
// read goroutine; it may block).
type venue struct {
	mu     sync.Mutex
	frames []frame
	behave func(f frame)
	// stall, when set, keeps every connection from being read until it
	// is closed: the peer's TCP window fills.
	stall chan struct{}
}

func (v *venue) saw(f frame) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.frames = append(v.frames, f)
	return len(v.frames)
}

// count is how many data frames carried method.
func (v *venue) count(method string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, f := range v.frames {
		if method == "" || strings.Contains(string(f.data), `"`+method+`"`) {
			n++
		}
	}
	return n
}

// hconn is one accepted connection: the WebSocket and its TCP socket.
type hconn struct {
	ws  *websocket.Conn
	tcp *net.TCPConn
	uri string // the request URI the client dialled (with its query)
}

// reset ends the connection with a TCP RST: no close frame.
func (c *hconn) reset() {
	_ = c.tcp.SetLinger(0)
	_ = c.tcp.Close()
}

// reply answers the JSON-RPC request data with result.
func (c *hconn) reply(data []byte, result any) {
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(data, &req)
	out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, out)
}

// server is one hostile WebSocket server on 127.0.0.1.
type server struct {
	idx  int
	v    *venue
	ln   net.Listener
	http *http.Server
	mu   sync.Mutex
	tcp  map[string]*net.TCPConn
	wg   sync.WaitGroup
}

type trackingListener struct {
	net.Listener
	s *server
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.tcp[c.RemoteAddr().String()] = c.(*net.TCPConn)
		l.s.mu.Unlock()
	}
	return c, err
}

func newServer(t *testing.T, idx int, v *venue) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{idx: idx, v: v, ln: ln, tcp: map[string]*net.TCPConn{}}
	s.http = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.http.Serve(trackingListener{ln, s})
	}()
	t.Cleanup(s.close)
	return s
}

func (s *server) url() string {
	return "ws://" + s.ln.Addr().String() + "/ws?api_key=" + secret
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	tcp := s.tcp[r.RemoteAddr]
	s.mu.Unlock()
	c := &hconn{ws: ws, tcp: tcp, uri: r.URL.RequestURI()}
	defer ws.CloseNow()
	if s.v.stall != nil {
		<-s.v.stall
		return
	}
	for {
		typ, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		f := frame{server: s.idx, conn: c, data: data}
		s.v.saw(f)
		if s.v.behave != nil {
			s.v.behave(f)
		}
	}
}

func (s *server) close() {
	_ = s.http.Close()
	s.mu.Lock()
	for _, c := range s.tcp {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// pool is n hostile servers sharing v, a client on each (opts added), and
// a balancer over them, with every client eligible.
type pool struct {
	sys     *actor.ActorSystem
	servers []*server
	clients []*actors.Client
	b       *balancer.Balancer
}

func newPool(t *testing.T, n int, v *venue, copts []actors.Option, bopts ...balancer.Option) *pool {
	t.Helper()
	p := &pool{sys: testutil.NewSystem(t)}
	var pids []*actor.PID
	for i := 0; i < n; i++ {
		s := newServer(t, i, v)
		p.servers = append(p.servers, s)
		opts := append([]actors.Option{actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(50 * time.Millisecond)}, copts...)
		c, err := actors.Connect(testutil.Context(t, 10*time.Second), p.sys, s.url(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		p.clients = append(p.clients, c)
		pids = append(pids, c.PID())
	}
	b, err := balancer.New(p.sys, append([]balancer.Option{balancer.WithDiscovery(func() []*actor.PID { return pids })}, bopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	p.b = b
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%d eligible clients", n), func() bool {
		k := 0
		for _, ch := range b.PoolHealth() {
			if ch.Eligible {
				k++
			}
		}
		return k == n
	})
	return p
}

// noSecret fails when err's text (or its %+v) shows the URL's secret.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, secret) {
			t.Errorf("the error shows the URL's secret: %s", s)
		}
	}
}

// mayHaveReached is the user's test: did some attempt perhaps reach a venue?
//
// After the fixes, as docs/balancing.md says: unless the error also wraps
// transport.ErrNotSent (a request that timed out before any byte of it was
// written; finding 4).
func mayHaveReached(err error) bool {
	return (errors.Is(err, actors.ErrDisconnected) || errors.Is(err, actors.ErrTimeout)) && !errors.Is(err, transport.ErrNotSent)
}

// resetOnFrame: every data frame is followed by a TCP reset.
func resetOnFrame(f frame) { f.conn.reset() }
