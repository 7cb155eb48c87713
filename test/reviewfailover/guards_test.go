package reviewfailover

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// An order (private/buy: not retry-safe) whose frame reached a venue that
// then reset TCP is never sent again: one frame on all servers, the error
// says it may have reached a venue, and it is no ErrMaxAttempts. Call and
// Request both.
func TestGuardOrderNotRetriedAfterReset(t *testing.T) {
	v := &venue{behave: resetOnFrame}
	p := newPool(t, 3, v, nil)
	ctx := testutil.Context(t, 10*time.Second)

	_, err := p.b.Call(ctx, "private/buy", map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10, "label": "o1"})
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("Call order after a reset: %v; want ErrDisconnected, not ErrMaxAttempts", err)
	}
	if n := v.count("private/buy"); n != 1 {
		t.Fatalf("the order reached the servers %d times, want 1", n)
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
	_, err = p.b.Request(ctx, []byte(`{"jsonrpc":"2.0","id":77,"method":"private/buy","params":{"label":"o2"}}`), balancer.CallMaxAttempts(10))
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("Request order after a reset: %v; want ErrDisconnected, not ErrMaxAttempts", err)
	}
	if n := v.count("private/buy"); n != 2 {
		t.Fatalf("two orders reached the servers %d times, want 2", n)
	}
}

// An order whose venue answers after the request timeout: ErrTimeout, sent
// once, no failover.
func TestGuardOrderNotRetriedAfterTimeout(t *testing.T) {
	release := make(chan struct{})
	v := &venue{behave: func(f frame) {
		select {
		case <-release:
		case <-time.After(time.Second):
		}
		f.conn.reply(f.data, "late")
	}}
	p := newPool(t, 2, v, []actors.Option{actors.WithRequestTimeout(200 * time.Millisecond)})
	defer close(release)
	_, err := p.b.Call(testutil.Context(t, 10*time.Second), "private/buy", map[string]any{"label": "t1"})
	noSecret(t, err)
	if !errors.Is(err, actors.ErrTimeout) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("order timed out: %v; want ErrTimeout, not ErrMaxAttempts", err)
	}
	if n := v.count("private/buy"); n != 1 {
		t.Fatalf("the order reached the servers %d times, want 1", n)
	}
}

// A retry-safe call whose first venue answers after the request timeout
// fails over and succeeds: the second server answers at once.
func TestGuardSafeCallFailsOverAfterLateAnswer(t *testing.T) {
	var seen atomic.Int32
	v := &venue{behave: func(f frame) {
		if seen.Add(1) == 1 {
			time.Sleep(500 * time.Millisecond)
		}
		f.conn.reply(f.data, "ok")
	}}
	p := newPool(t, 2, v, []actors.Option{actors.WithRequestTimeout(200 * time.Millisecond)})
	res, err := p.b.Call(testutil.Context(t, 10*time.Second), "public/get_time", nil)
	if err != nil || string(res) != `"ok"` {
		t.Fatalf("retry-safe call after a late answer: %s, %v; want ok", res, err)
	}
	if n := v.count("public/get_time"); n != 2 {
		t.Fatalf("the call reached the servers %d times, want 2 (one failover)", n)
	}
}

// The change itself, on real peers: the first attempt is lost (TCP reset
// after the frame), the next is refused by a rate limiter the clients
// share (RateReject, no token left). With attempts = pool size the error
// is ErrMaxAttempts wrapping both; with more attempts than clients it is
// "every client was tried" (no ErrMaxAttempts), still with the loss; with
// nothing sent at all no loss is claimed.
func TestGuardLostThenRateLimitedKeepsLoss(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attempts int
		max      bool
	}{{"attempts=pool", 2, true}, {"attempts>pool", 5, false}} {
		t.Run(tc.name, func(t *testing.T) {
			lim := ratelimit.Simple(0.001, 1) // one token, the next in 1000 s
			v := &venue{behave: resetOnFrame}
			p := newPool(t, 2, v, []actors.Option{actors.WithRateLimiter(lim, actors.RateReject)})
			_, err := p.b.Call(testutil.Context(t, 10*time.Second), "public/get_time", nil, balancer.CallMaxAttempts(tc.attempts))
			noSecret(t, err)
			// After the fixes: the operation's error does not match
			// ErrRateLimited ("nothing was sent": not true of the
			// operation); its text names it.
			if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, actors.ErrRateLimited) || !strings.Contains(err.Error(), "rate limited") || errors.Is(err, balancer.ErrMaxAttempts) != tc.max {
				t.Fatalf("lost, then rate-limited: %v; want ErrDisconnected, \"rate limited\" in the text but not matched, ErrMaxAttempts %v", err, tc.max)
			}
			if n := v.count(""); n != 1 {
				t.Fatalf("%d frames reached the servers, want 1", n)
			}
			// Nothing can be sent now: no loss is claimed.
			_, err = p.b.Call(testutil.Context(t, 10*time.Second), "public/get_time", nil, balancer.CallMaxAttempts(tc.attempts))
			if err == nil || mayHaveReached(err) {
				t.Fatalf("nothing sent: %v; want ErrRateLimited (or ErrNotConnected) without a loss", err)
			}
		})
	}
}

// Send: a pool where every client fails differently (one reset after the
// frame, one rate-limited) never claims a loss for a Send the kernel took
// (Send returns at the write), and ErrMaxAttempts comes only when attempts
// ran out: CallMaxAttempts(1) on a rate-limited pool.
func TestGuardMaxAttemptsOnlyWhenAttemptsRanOut(t *testing.T) {
	lim := ratelimit.Simple(0.001, 1)
	v := &venue{}
	p := newPool(t, 2, v, []actors.Option{actors.WithRateLimiter(lim, actors.RateReject)})
	ctx := testutil.Context(t, 10*time.Second)
	if err := p.b.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/hello"}`)); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	err := p.b.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/hello"}`), balancer.CallMaxAttempts(1))
	if !errors.Is(err, balancer.ErrMaxAttempts) || !errors.Is(err, actors.ErrRateLimited) || mayHaveReached(err) {
		t.Fatalf("1 attempt, rate-limited: %v; want ErrMaxAttempts wrapping ErrRateLimited only", err)
	}
	err = p.b.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/hello"}`), balancer.CallMaxAttempts(2))
	if !errors.Is(err, balancer.ErrMaxAttempts) || mayHaveReached(err) {
		t.Fatalf("2 attempts on 2 clients: %v; want ErrMaxAttempts", err)
	}
	err = p.b.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/hello"}`), balancer.CallMaxAttempts(3))
	if errors.Is(err, balancer.ErrMaxAttempts) || !errors.Is(err, actors.ErrRateLimited) || mayHaveReached(err) {
		t.Fatalf("3 attempts on 2 clients: %v; want ErrRateLimited, not ErrMaxAttempts", err)
	}
}
