// Package review14 holds adversarial tests of the issue-14 performance
// changes (write combining, pooled reads, the pending table's one timer per
// client, pooled pending entries). Each test that failed was a finding;
// all are fixed (FINDINGS.md) and stay as guards.
package review14

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// rpcServer answers every JSON-RPC request with {"result": {"id": <id>,
// "nonce": <params.nonce>}} after delay(id) (0: at once). Answers to one
// connection may overtake each other unless fifo is set.
type rpcServer struct {
	srv    *httptest.Server
	delay  func() time.Duration
	fifo   bool
	sent   atomic.Int64 // answers written
	recv   atomic.Int64 // requests read
	mu     sync.Mutex
	conns  []*websocket.Conn
	closed bool
	wg     sync.WaitGroup
	// holdEvery k > 1: requests are held until the k-th arrives; then the
	// held ones are answered, in order, and the k-th after them.
	holdEvery int
	stopped   chan struct{}
}

func newRPCServer(t *testing.T, delay func() time.Duration, fifo bool) *rpcServer {
	s := &rpcServer{delay: delay, fifo: fifo, stopped: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.close)
	return s
}

func (s *rpcServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

func (s *rpcServer) close() {
	select {
	case <-s.stopped:
		return
	default:
	}
	close(s.stopped)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.dropAll()
	s.srv.Close()
	s.wg.Wait()
}

func (s *rpcServer) dropAll() {
	s.mu.Lock()
	cs := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.CloseNow()
	}
}

func (s *rpcServer) handle(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 20)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.CloseNow()
		return
	}
	s.conns = append(s.conns, c)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	var held [][2]json.RawMessage // id, nonce of held requests
	n := 0
	defer c.CloseNow()
	type job struct {
		id    json.RawMessage
		nonce json.RawMessage
		at    time.Time
	}
	fifo := make(chan job, 4096)
	if s.fifo {
		if !s.add() {
			return
		}
		go func() {
			defer s.wg.Done()
			for j := range fifo {
				if d := time.Until(j.at); d > 0 {
					select {
					case <-time.After(d):
					case <-s.stopped:
						return
					}
				}
				s.answer(c, j.id, j.nonce)
			}
		}()
		defer close(fifo)
	}
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			return
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Params struct {
				Nonce json.RawMessage `json:"nonce"`
			} `json:"params"`
		}
		if json.Unmarshal(data, &req) != nil || req.ID == nil {
			continue
		}
		s.recv.Add(1)
		n++
		if s.holdEvery > 1 {
			if n%s.holdEvery != 0 {
				held = append(held, [2]json.RawMessage{req.ID, req.Params.Nonce})
				continue
			}
			for _, h := range held {
				s.answer(c, h[0], h[1])
			}
			held = nil
			s.answer(c, req.ID, req.Params.Nonce)
			continue
		}
		d := time.Duration(0)
		if s.delay != nil {
			d = s.delay()
		}
		if s.fifo {
			fifo <- job{req.ID, req.Params.Nonce, time.Now().Add(d)}
			continue
		}
		if d == 0 {
			s.answer(c, req.ID, req.Params.Nonce)
			continue
		}
		if !s.add() {
			return
		}
		go func(id, nonce json.RawMessage) {
			defer s.wg.Done()
			select {
			case <-time.After(d):
			case <-s.stopped:
				return
			}
			s.answer(c, id, nonce)
		}(req.ID, req.Params.Nonce)
	}
}

func (s *rpcServer) add() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *rpcServer) answer(c *websocket.Conn, id, nonce json.RawMessage) {
	if nonce == nil {
		nonce = json.RawMessage("null")
	}
	msg := `{"jsonrpc":"2.0","id":` + string(id) + `,"result":{"id":` + string(id) + `,"nonce":` + string(nonce) + `}}`
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.Write(ctx, websocket.MessageText, []byte(msg)) == nil {
		s.sent.Add(1)
	}
}

func newSys(t *testing.T) *actor.ActorSystem {
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	return sys
}

// connect connects a client with fast backoff, no heartbeat, no host dial
// rate, and registers Close.
func connect(t *testing.T, url string, opts ...actors.Option) *actors.Client {
	t.Helper()
	base := []actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(100 * time.Millisecond),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryCount(actors.RetryForever),
		actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }),
	}
	c, err := actors.Connect(testutil.Context(t, 10*time.Second), newSys(t), url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func randDelay(max time.Duration) func() time.Duration {
	return func() time.Duration { return time.Duration(rand.Int64N(int64(max))) }
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
