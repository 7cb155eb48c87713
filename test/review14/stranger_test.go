package review14

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// A trading user's load, through the public API only: 64 goroutines
// calling, 8 sending (each every millisecond), the server pinging every 30 ms (under the ping-flood guard) and the client's own
// ping-pong heartbeat, an order book notification stream, and a forced
// Rotate and Reconnect in the middle. Every Call answers its own request
// or fails typed, no answer is late or unmatched (RequestTimeout is far),
// and the client ends connected with nothing pending.
func TestStrangerTradingLoad(t *testing.T) {
	srv := wstest.NewServer(
		wstest.WithServerPings(30*time.Millisecond),
		wstest.WithResponder("private/buy", func(_ *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) { return p, nil }),
	)
	t.Cleanup(srv.Close)
	var unmatched, inbound atomic.Int64
	c := connect(t, srv.URL(), actors.WithHeartbeat(actors.HeartbeatPingPong, time.Second),
		actors.WithRequestTimeout(10*time.Second),
		actors.WithHandler(func(in actors.Inbound) {
			inbound.Add(1)
			if in.Unmatched {
				unmatched.Add(1)
			}
		}))
	ctx := testutil.Context(t, 60*time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, fails atomic.Int64
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				type order struct{ G, I int }
				resp, err := c.Call(ctx, "private/buy", order{g, i})
				if err != nil {
					if n := fails.Add(1); n%200 == 1 {
						t.Logf("call %d/%d at %v: %v", g, i, time.Now().Format("05.000"), err)
					}
					if !isTyped(err) {
						t.Errorf("call: untyped %v", err)
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				calls.Add(1)
				var o order
				if json.Unmarshal(resp, &o) != nil || o.G != g || o.I != i {
					t.Errorf("order %d/%d got %s", g, i, resp)
				}
			}
		}(g)
	}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"noop"}`)); err != nil && !isTyped(err) {
					t.Errorf("send: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	t.Logf("rotate at %v", time.Now().Format("05.000"))
	if err := c.Rotate(testutil.Context(t, 10*time.Second)); err != nil {
		t.Errorf("Rotate: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf("reconnect at %v", time.Now().Format("05.000"))
	if err := c.Reconnect(testutil.Context(t, 10*time.Second)); err != nil {
		t.Errorf("Reconnect: %v", err)
	}
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	h := c.Health()
	t.Logf("calls %d, failed %d, late %d, unmatched %d, inbound %d, state %v", calls.Load(), fails.Load(), h.LateResponses, unmatched.Load(), inbound.Load(), h.State)
	if unmatched.Load() != 0 {
		t.Errorf("%d unmatched answers reached the handler", unmatched.Load())
	}
	if h.LateResponses != 0 {
		t.Errorf("LateResponses %d with a 10s RequestTimeout", h.LateResponses)
	}
	if h.Pending != 0 {
		t.Errorf("Pending %d", h.Pending)
	}
	if calls.Load() == 0 {
		t.Errorf("no call got an answer")
	}
}

func isTyped(err error) bool {
	for _, e := range []error{actors.ErrDisconnected, actors.ErrNotConnected, actors.ErrClosed, actors.ErrTimeout} {
		if errorsIs(err, e) {
			return true
		}
	}
	return false
}
