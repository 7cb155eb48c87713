package review14

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/internal/testutil"
)

type answer struct {
	ID    json.RawMessage `json:"id"`
	Nonce json.RawMessage `json:"nonce"`
}

func decodeResult(t *testing.T, resp json.RawMessage) answer {
	t.Helper()
	var env struct {
		Result answer `json:"result"`
	}
	if err := json.Unmarshal(resp, &env); err != nil {
		t.Errorf("response %s: %v", resp, err)
	}
	return env.Result
}

// Call documents "The deadline is the earlier of ctx's and
// RequestTimeout". A request no longer has a context of its own: the
// boundCtx given to the write queue reports RequestTimeout as its Deadline
// but its Done is the caller's. A Call made with context.Background that
// queues behind a write the peer stalls cannot leave the queue when
// RequestTimeout passes: it waits for the stalled write's WriteTimeout.
// (Before 122f4ea, context.WithTimeout(RequestTimeout) dequeued it.)
func TestCallQueuedBehindStalledWriteHonoursRequestTimeout(t *testing.T) {
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		<-c.Done() // reads nothing: the client's writes stall once the socket buffers fill
	})
	const reqTimeout = 300 * time.Millisecond
	c := connect(t, srv.URL(), actors.WithRequestTimeout(reqTimeout),
		actors.Option(func(c *actors.Config) { c.WriteTimeout = 60 * time.Second }))

	bigDone := make(chan error, 1)
	go func() { bigDone <- c.SendBinary(context.Background(), make([]byte, 128<<20)) }()
	time.Sleep(300 * time.Millisecond) // let the big write fill the socket buffers

	callDone := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "public/test", nil)
		callDone <- err
	}()
	callReturned := false
	select {
	case err := <-callDone:
		callReturned = true
		if !errors.Is(err, actors.ErrTimeout) {
			t.Errorf("Call behind a stalled write: %v, want ErrTimeout", err)
		}
		select {
		case err := <-bigDone:
			t.Logf("the big write ended first (%v): inconclusive", err)
		default:
		}
	case err := <-bigDone:
		t.Fatalf("the big write ended (%v) before the Call: the peer did not stall it", err)
	case <-time.After(15 * time.Second):
		t.Errorf("Call(context.Background()) still waiting 15s after RequestTimeout %v: queued behind a stalled write, it waits for WriteTimeout (60s) instead", reqTimeout)
	}
	_ = c.Close()
	select {
	case <-bigDone:
	case <-time.After(20 * time.Second):
		t.Errorf("big SendBinary still blocked 20s after Close")
	}
	if !callReturned {
		select {
		case <-callDone:
		case <-time.After(20 * time.Second):
			t.Errorf("Call still blocked 20s after Close")
		}
	}
}

// Answers race RequestTimeout: each answer arrives at a random time in
// [0, 2*RequestTimeout). Every answer delivered goes to its own caller
// (nonce and id match), none is delivered twice or shown to the handler as
// unmatched, and every answer to a request that timed out is counted late.
func TestLateAnswersRacingRequestTimeout(t *testing.T) {
	const reqTimeout = 60 * time.Millisecond
	srv := newRPCServer(t, randDelay(2*reqTimeout), false)
	var unmatched, inbound atomic.Int64
	c := connect(t, srv.url(), actors.WithRequestTimeout(reqTimeout),
		actors.WithHandler(func(in actors.Inbound) {
			inbound.Add(1)
			if in.Unmatched {
				unmatched.Add(1)
			}
		}))
	ctx := testutil.Context(t, 60*time.Second)
	const callers, each = 40, 20 // 800 requests < the 1024 give-ups remembered
	var ok, timedOut, other atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf(`"g%d-%d"`, g, i)
				nonce := g*1000 + i
				var resp json.RawMessage
				var err error
				if i%2 == 0 {
					resp, err = c.Request(context.Background(), []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"m","params":{"nonce":%d}}`, id, nonce)))
				} else {
					resp, err = c.Call(context.Background(), "m", map[string]int{"nonce": nonce})
				}
				switch {
				case err == nil:
					ok.Add(1)
					var env struct {
						ID     json.RawMessage `json:"id"`
						Result answer          `json:"result"`
					}
					if i%2 == 0 {
						_ = json.Unmarshal(resp, &env)
					} else {
						env.Result = decodeResult(t, append([]byte(`{"result":`), append(resp, '}')...))
					}
					if string(env.Result.Nonce) != fmt.Sprint(nonce) {
						t.Errorf("caller %d/%d got another's answer: %s", g, i, resp)
					}
					if i%2 == 0 && string(env.Result.ID) != id {
						t.Errorf("Request %s got the answer to %s", id, env.Result.ID)
					}
				case errors.Is(err, actors.ErrTimeout):
					timedOut.Add(1)
				default:
					other.Add(1)
					t.Errorf("caller %d/%d: %v", g, i, err)
				}
				if ctx.Err() != nil {
					return
				}
			}
		}(g)
	}
	wg.Wait()
	total := int64(callers * each)
	testutil.Eventually(t, 10*time.Second, "every request answered by the server", func() bool { return srv.sent.Load() == total })
	time.Sleep(200 * time.Millisecond) // the last answers reach the client's reader
	testutil.Eventually(t, 5*time.Second, "late answers counted", func() bool {
		return int64(c.Health().LateResponses)+ok.Load() >= total
	})
	h := c.Health()
	t.Logf("ok %d, timed out %d, late %d, unmatched %d, inbound %d, pending %d", ok.Load(), timedOut.Load(), h.LateResponses, unmatched.Load(), inbound.Load(), h.Pending)
	if int64(h.LateResponses) != timedOut.Load() {
		t.Errorf("LateResponses %d, want %d (one per request that timed out; all were answered)", h.LateResponses, timedOut.Load())
	}
	if unmatched.Load() != 0 || inbound.Load() != 0 {
		t.Errorf("the handler saw %d messages (%d unmatched responses): every answer belongs to a request", inbound.Load(), unmatched.Load())
	}
	if h.Pending != 0 {
		t.Errorf("Pending %d after every call returned", h.Pending)
	}
}

// An id reused after its request timed out, on a server that answers in
// order: the second request gets its own answer (the second), the first
// answer is counted late. Repeated with the same id.
func TestIDReuseAfterTimeoutInOrder(t *testing.T) {
	const reqTimeout = 50 * time.Millisecond
	srv := newRPCServer(t, nil, false)
	srv.holdEvery = 2 // the first of each pair is answered when the second arrives, before it
	var inbound atomic.Int64
	c := connect(t, srv.url(), actors.WithRequestTimeout(reqTimeout),
		actors.WithHandler(func(actors.Inbound) { inbound.Add(1) }))
	for i := 0; i < 20; i++ {
		_, err := c.Request(context.Background(), []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"m","params":{"nonce":%d}}`, 2*i)))
		if !errors.Is(err, actors.ErrTimeout) {
			t.Fatalf("round %d: first request: %v, want ErrTimeout", i, err)
		}
		resp, err := c.Request(context.Background(), []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"m","params":{"nonce":%d}}`, 2*i+1)))
		if err != nil {
			t.Fatalf("round %d: second request: %v", i, err)
		}
		var env struct{ Result answer }
		_ = json.Unmarshal(resp, &env)
		if string(env.Result.Nonce) != fmt.Sprint(2*i+1) {
			t.Fatalf("round %d: the reused id got the other request's answer: %s", i, resp)
		}
	}
	if h := c.Health(); h.LateResponses != 20 || inbound.Load() != 0 {
		t.Errorf("LateResponses %d (want 20), handler saw %d", h.LateResponses, inbound.Load())
	}
}

// Hundreds of calls in flight when the client closes, reconnects or
// rotates: every call returns (an answer that is its own, or a typed
// error), the table ends empty, nothing leaks (goleak in TestMain).
func TestLifecycleWithHundredsInFlight(t *testing.T) {
	for _, op := range []string{"close", "reconnect", "rotate", "drop"} {
		t.Run(op, func(t *testing.T) {
			for round := 0; round < 3; round++ {
				srv := newRPCServer(t, randDelay(100*time.Millisecond), false)
				c := connect(t, srv.url(), actors.WithRequestTimeout(2*time.Second))
				ctx := testutil.Context(t, 30*time.Second)
				var wg sync.WaitGroup
				var answered, failed atomic.Int64
				start := make(chan struct{})
				for g := 0; g < 300; g++ {
					wg.Add(1)
					go func(g int) {
						defer wg.Done()
						<-start
						for i := 0; i < 3; i++ {
							nonce := g*10 + i
							resp, err := c.Call(ctx, "m", map[string]int{"nonce": nonce})
							if err == nil {
								answered.Add(1)
								a := decodeResult(t, append([]byte(`{"result":`), append(resp, '}')...))
								if string(a.Nonce) != fmt.Sprint(nonce) {
									t.Errorf("call %d got another's answer %s", nonce, resp)
								}
								continue
							}
							failed.Add(1)
							var pe *actors.PanicError
							if errors.As(err, &pe) || !(errors.Is(err, actors.ErrDisconnected) || errors.Is(err, actors.ErrNotConnected) ||
								errors.Is(err, actors.ErrClosed) || errors.Is(err, actors.ErrNotFound) || errors.Is(err, actors.ErrTimeout)) {
								t.Errorf("call %d: untyped error %v", nonce, err)
							}
						}
					}(g)
				}
				close(start)
				time.Sleep(50 * time.Millisecond)
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				switch op {
				case "close":
					_ = c.Close()
				case "reconnect":
					if err := c.Reconnect(rctx); err != nil {
						t.Errorf("Reconnect: %v", err)
					}
				case "rotate":
					if err := c.Rotate(rctx); err != nil {
						t.Errorf("Rotate: %v", err)
					}
				case "drop":
					srv.dropAll()
				}
				cancel()
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(25 * time.Second):
					t.Fatalf("%s: calls still waiting 25s later", op)
				}
				if op != "close" {
					if p := c.Health().Pending; p != 0 {
						t.Errorf("%s: Pending %d after every call returned", op, p)
					}
				}
				_ = c.Close()
				srv.close()
			}
		})
	}
}

// Two requests with the same id give up in turn on one connection, and a
// third reuses it; the server answers in order (1, 2, 3). The third must
// get the third answer: the first two are late answers of the two that
// gave up. The table remembers one give-up per id, so the first answer is
// counted late and the second, the late answer of request 2, is delivered
// to request 3 as its own. (The same logic was in d4f0abf's correlate.go:
// not a regression of issue 14, but the late-answer rule it keeps.)
func TestIDReusedTwiceAfterTimeoutsGetsItsOwnAnswer(t *testing.T) {
	const reqTimeout = 50 * time.Millisecond
	srv := newRPCServer(t, nil, false)
	srv.holdEvery = 3
	var inbound atomic.Int64
	c := connect(t, srv.url(), actors.WithRequestTimeout(reqTimeout),
		actors.WithHandler(func(actors.Inbound) { inbound.Add(1) }))
	req := func(nonce int) (json.RawMessage, error) {
		return c.Request(context.Background(), []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":"same","method":"m","params":{"nonce":%d}}`, nonce)))
	}
	for i := 1; i <= 2; i++ {
		if _, err := req(i); !errors.Is(err, actors.ErrTimeout) {
			t.Fatalf("request %d: %v, want ErrTimeout", i, err)
		}
	}
	resp, err := req(3)
	if err != nil {
		t.Fatalf("request 3: %v", err)
	}
	var env struct{ Result answer }
	_ = json.Unmarshal(resp, &env)
	if string(env.Result.Nonce) != "3" {
		t.Errorf("request 3 got the answer to request %s (%s): a late answer delivered to the wrong caller", env.Result.Nonce, resp)
	}
	testutil.Eventually(t, 5*time.Second, "two late answers counted", func() bool { return c.Health().LateResponses >= 2 })
	if inbound.Load() != 0 {
		t.Errorf("handler saw %d messages", inbound.Load())
	}
}

// Callers cancel their ctx at random points (before the write, while
// queued, while waiting for the answer) while answers come at random: an
// answer goes to its own caller or is counted late, never to the handler
// as unmatched (which would mean a request that said "not sent" was
// written, or a written one was forgotten); the table ends empty.
func TestRandomCancelsEveryPoint(t *testing.T) {
	srv := newRPCServer(t, randDelay(5*time.Millisecond), false)
	var unmatched atomic.Int64
	c := connect(t, srv.url(), actors.WithRequestTimeout(5*time.Second),
		actors.WithHandler(func(in actors.Inbound) {
			if in.Unmatched {
				unmatched.Add(1)
			}
		}))
	var wg sync.WaitGroup
	var ok, cancelled atomic.Int64
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				nonce := g*1000 + i
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(time.Duration(rand.Int64N(int64(40*time.Millisecond))), cancel)
				resp, err := c.Call(ctx, "m", map[string]int{"nonce": nonce})
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
					a := decodeResult(t, append([]byte(`{"result":`), append(resp, '}')...))
					if string(a.Nonce) != fmt.Sprint(nonce) {
						t.Errorf("call %d got another's answer %s", nonce, resp)
					}
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				default:
					t.Errorf("call %d: %v", nonce, err)
				}
			}
		}(g)
	}
	wg.Wait()
	testutil.Eventually(t, 10*time.Second, "server answered all it got", func() bool { return srv.sent.Load() == srv.recv.Load() })
	time.Sleep(200 * time.Millisecond)
	h := c.Health()
	t.Logf("ok %d, cancelled %d, server got %d, late %d, unmatched %d", ok.Load(), cancelled.Load(), srv.recv.Load(), h.LateResponses, unmatched.Load())
	if unmatched.Load() != 0 {
		t.Errorf("%d answers reached the handler as unmatched", unmatched.Load())
	}
	if got := ok.Load() + int64(h.LateResponses); got != srv.recv.Load() {
		t.Errorf("answered %d + late %d != %d requests the server got", ok.Load(), h.LateResponses, srv.recv.Load())
	}
	if h.Pending != 0 {
		t.Errorf("Pending %d", h.Pending)
	}
}

// A Call whose RequestTimeout passes while it queues behind a stalled
// write is not written at all, even when the stall clears later: the peer
// never sees it, and the Call says ErrTimeout.
func TestCallExpiredInQueueNeverWritten(t *testing.T) {
	resume := make(chan struct{})
	results := make(chan *received, 1)
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		select {
		case <-resume:
		case <-c.Done():
			return
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		r := newReceived()
		defer func() { results <- r }()
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			if f.Opcode == hostile.OpText {
				r.mu.Lock()
				r.tags[string(f.Payload)]++
				r.mu.Unlock()
			}
			if f.Opcode == hostile.OpClose {
				_ = c.WriteClose(1000, "")
				return
			}
		}
	})
	c := connect(t, srv.URL(), actors.WithRequestTimeout(200*time.Millisecond),
		actors.Option(func(c *actors.Config) { c.WriteTimeout = 30 * time.Second }))
	bigDone := make(chan error, 1)
	big := make([]byte, 12<<20)
	go func() { bigDone <- c.SendBinary(context.Background(), big) }()
	time.Sleep(300 * time.Millisecond)
	callDone := make(chan error, 1)
	go func() {
		_, err := c.Request(context.Background(), []byte(`{"jsonrpc":"2.0","id":"queued","method":"private/buy","params":{}}`))
		callDone <- err
	}()
	time.Sleep(time.Second) // well past RequestTimeout, still queued
	close(resume)
	if err := <-bigDone; err != nil {
		t.Errorf("big send: %v", err)
	}
	select {
	case err := <-callDone:
		if !errors.Is(err, actors.ErrTimeout) {
			t.Errorf("Request: %v, want ErrTimeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Request still waiting 20s after the stall cleared")
	}
	_ = c.Close()
	var r *received
	select {
	case r = <-results:
	case <-time.After(20 * time.Second):
		t.Fatal("peer did not finish")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, n := range r.tags {
		if strings.Contains(p, `"queued"`) {
			t.Errorf("the expired request was written %d times: %s", n, p)
		}
	}
}
