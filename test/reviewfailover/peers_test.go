package reviewfailover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// How a hostile venue ends a connection right after it took a frame. The
// close reason and the error message carry the URL's query (the secret):
// a venue that echoes what it was asked.
var endings = map[string]func(f frame){
	"reset":       func(f frame) { f.conn.reset() },
	"fin":         func(f frame) { _ = f.conn.tcp.Close() }, // no close frame, no RST
	"half-close":  func(f frame) { _ = f.conn.tcp.CloseWrite() },
	"close-frame": func(f frame) { _ = f.conn.ws.Close(websocket.StatusPolicyViolation, f.conn.uri) },
	"garbage": func(f frame) { // a frame no WebSocket peer may send: reserved opcode
		_, _ = f.conn.tcp.Write([]byte{0x83, 0x05, 'h', 'e', 'l', 'l', 'o'})
	},
}

// Every way of ending the connection after the frame: an order is sent
// once, its error says it may have reached the venue and is no
// ErrMaxAttempts; a retry-safe call is tried on every client (3 of 3) and
// its error says the same; no error shows the URL's secret.
func TestGuardEveryEndingOrdersOnceSafeFailsOver(t *testing.T) {
	for name, end := range endings {
		t.Run(name, func(t *testing.T) {
			v := &venue{behave: end}
			p := newPool(t, 3, v, []actors.Option{actors.WithRequestTimeout(time.Second)})
			ctx := testutil.Context(t, 10*time.Second)
			_, err := p.b.Call(ctx, "private/buy", map[string]any{"label": "e1"})
			noSecret(t, err)
			if !mayHaveReached(err) || errors.Is(err, balancer.ErrMaxAttempts) {
				t.Errorf("order: %v; want ErrDisconnected or ErrTimeout, not ErrMaxAttempts", err)
			}
			if n := v.count("private/buy"); n != 1 {
				t.Errorf("the order reached the servers %d times, want 1", n)
			}
			testutil.Eventually(t, 5*time.Second, "3 eligible again", func() bool {
				k := 0
				for _, h := range p.b.PoolHealth() {
					if h.Eligible {
						k++
					}
				}
				return k == 3
			})
			_, err = p.b.Call(ctx, "public/get_time", nil)
			noSecret(t, err)
			if !mayHaveReached(err) {
				t.Errorf("retry-safe call: %v; want ErrDisconnected or ErrTimeout", err)
			}
			if n := v.count("public/get_time"); n < 2 {
				t.Errorf("the retry-safe call reached the servers %d times, want a failover", n)
			}
		})
	}
}

// A venue whose JSON-RPC error and close reason echo the request URI:
// the RPCError is an answer (never retried), and neither it nor any error
// shows the secret.
func TestGuardSecretNotInErrors(t *testing.T) {
	var n atomic.Int32
	v := &venue{behave: func(f frame) {
		if n.Add(1) == 1 {
			out := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":13009,"message":"bad key for %s"}}`, idOf(f.data), f.conn.uri)
			_ = f.conn.ws.Write(context.Background(), websocket.MessageText, []byte(out))
			return
		}
		_ = f.conn.ws.Close(websocket.StatusPolicyViolation, f.conn.uri)
	}}
	p := newPool(t, 2, v, nil)
	ctx := testutil.Context(t, 10*time.Second)
	_, err := p.b.Call(ctx, "public/get_time", nil)
	var rpcErr *actors.RPCError
	if !errors.As(err, &rpcErr) || mayHaveReached(err) {
		t.Fatalf("want the RPC error: %v", err)
	}
	noSecret(t, err)
	if v.count("") != 1 {
		t.Errorf("an answer was retried")
	}
	_, err = p.b.Call(ctx, "public/get_time", nil, balancer.CallMaxAttempts(2))
	noSecret(t, err)
	if !mayHaveReached(err) {
		t.Errorf("close frame: %v", err)
	}
	for _, c := range p.clients {
		noSecret(t, c.Health().LastError)
	}
}

func idOf(data []byte) string {
	s := string(data)
	i := strings.Index(s, `"id":`)
	if i < 0 {
		return "null"
	}
	s = s[i+5:]
	j := strings.IndexAny(s, ",}")
	return s[:j]
}

// The premise of TestFinding1CancelBetweenAttemptsHidesLoss, without the
// cancel: a 32 MiB retry-safe Send to venues that stopped reading times out
// mid-write (ErrDisconnected), the failover is refused by the shared
// limiter, and the error ("every client was tried") keeps the loss.
func TestGuardSendWriteTimeoutThenRefusedKeepsLoss(t *testing.T) {
	lim := ratelimit.Simple(0.001, 1)
	v := &venue{stall: make(chan struct{})}
	defer close(v.stall)
	p := newPool(t, 2, v, []actors.Option{
		actors.WithRateLimiter(lim, actors.RateReject),
		actors.Option(func(c *actors.Config) { c.WriteTimeout = 300 * time.Millisecond }),
	})
	big := []byte(strings.Repeat("x", 32<<20))
	err := p.b.Send(testutil.Context(t, 20*time.Second), big, balancer.RetrySafe())
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, actors.ErrRateLimited) || !strings.Contains(err.Error(), "rate limited") || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("write timed out, then refused: %v; want ErrDisconnected, \"rate limited\" in the text but not matched (the operation was not 'not sent'), not ErrMaxAttempts", err)
	}
}

// A Send that is not retry-safe and times out mid-write (32 MiB to venues
// that stopped reading): ErrDisconnected, one attempt only (the shared
// limiter saw one data frame), no ErrMaxAttempts.
func TestGuardSendOrderWriteTimeoutNotRetried(t *testing.T) {
	var data atomic.Int32
	lim, err := ratelimit.New("account", func(f ratelimit.Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		data.Add(1)
		return 0, 1
	}, ratelimit.Bucket{Name: "orders", Rate: 100, Burst: 10})
	if err != nil {
		t.Fatal(err)
	}
	v := &venue{stall: make(chan struct{})}
	defer close(v.stall)
	p := newPool(t, 3, v, []actors.Option{
		actors.WithRateLimiter(lim, actors.RateReject),
		actors.Option(func(c *actors.Config) { c.WriteTimeout = 300 * time.Millisecond }),
	})
	big := []byte(`{"jsonrpc":"2.0","method":"private/buy","params":{"pad":"` + strings.Repeat("x", 32<<20) + `"}}`)
	err = p.b.Send(testutil.Context(t, 20*time.Second), big)
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("order Send timed out mid-write: %v; want ErrDisconnected, not ErrMaxAttempts", err)
	}
	if n := data.Load(); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}

// A retry-safe call whose caller's deadline passes while the first venue
// sits on the request: the error says the call may have reached a venue
// (ErrTimeout), is the caller's deadline, and no second attempt is made
// past the deadline.
func TestGuardCallerDeadlineDuringAttempt(t *testing.T) {
	v := &venue{behave: func(f frame) {}} // never answers
	p := newPool(t, 2, v, nil)
	ctx, cancel := context.WithTimeout(testutil.Context(t, 10*time.Second), 300*time.Millisecond)
	defer cancel()
	_, err := p.b.Call(ctx, "public/get_time", nil)
	noSecret(t, err)
	if !mayHaveReached(err) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("deadline during the attempt: %v; want ErrTimeout and DeadlineExceeded, not ErrMaxAttempts", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := v.count(""); n != 1 {
		t.Fatalf("%d frames, want 1 (no attempt past the deadline)", n)
	}
}
