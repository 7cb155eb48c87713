package review13

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/internal/testutil"
)

// 1,000 channels the venue refuses forever: how many requests does the
// client make on the live connection?
func TestRefusedManyChannelsNoStorm(t *testing.T) {
	v := newVenue(t, false)
	v.setRefuse(func(string) bool { return true })
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	chs := make([]string, 1000)
	for i := range chs {
		chs[i] = fmt.Sprintf("nope.%04d", i)
	}
	_ = c.Subscribe(ctx, chs...)
	time.Sleep(500 * time.Millisecond)
	n0 := len(v.allFrames())
	time.Sleep(3 * time.Second)
	n := len(v.allFrames()) - n0
	v.mu.Lock()
	nreq := len(v.reqs)
	v.mu.Unlock()
	t.Logf("%d frames in 3 s for 1,000 refused channels (%d subscribe requests so far)", n, nreq)
	// Capped backoff 200 ms, [c/2,c]: a batched client needs ~20-30 requests
	// in 3 s; one request per channel per retry would be ~20,000.
	// Found by review (fixed): a venue that refuses 1,000 channels forever gets ~2,200
	// subscribe requests in 3 s (~700/s) on one live connection: each
	// channel has its own retry timer and the retries are barely batched.
	// Expected: retries of channels due at about the same time go in one
	// request (the dialect splits them), so the venue sees a handful a second.
	if n > 300 {
		t.Errorf("retry storm: %d frames in 3 s", n)
	}
}

// Subscribe refused by the client's own rate limiter (RateReject): the intent
// is kept and applied later.
func TestSubscribeRateRejected(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v, actors.WithRateLimiter(ratelimit.Simple(2, 1), actors.RateReject))
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, "rl.1"); err != nil {
		t.Fatal(err)
	}
	err := c.Subscribe(ctx, "rl.2")
	t.Logf("second Subscribe under RateReject: %v", err)
	if err == nil {
		t.Skip("limiter let it through")
	}
	if !errors.Is(err, actors.ErrRateLimited) {
		t.Errorf("want ErrRateLimited, got %v", err)
	}
	in := false
	for _, s := range c.Subscriptions() {
		in = in || s == "rl.2"
	}
	t.Logf("rl.2 in the wanted set after ErrRateLimited: %v; Channels %+v", in, c.Health().Channels)
	if in {
		eventually(t, 5*time.Second, "rate-limited intent applied later", func() bool {
			st, _ := chanState(c, "rl.2")
			return st.State == actors.ChannelActive
		})
	}
	_ = context.Background
}

// The same with the default backoff (RetryDelay 1 s, MaxBackoff 30 s).
func TestRefusedManyChannelsDefaultBackoff(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s")
	}
	v := newVenue(t, false)
	v.setRefuse(func(string) bool { return true })
	c := connect(t, v, actors.WithRetryDelay(time.Second), actors.WithMaxBackoff(30*time.Second))
	ctx := testutil.Context(t, 10*time.Second)
	chs := make([]string, 1000)
	for i := range chs {
		chs[i] = fmt.Sprintf("nope.%04d", i)
	}
	_ = c.Subscribe(ctx, chs...)
	n0 := len(v.allFrames())
	time.Sleep(4 * time.Second)
	fr := v.allFrames()[n0:]
	v.mu.Lock()
	var chsPerReq []int
	for _, r := range v.reqs[1:] {
		chsPerReq = append(chsPerReq, len(r.channels))
	}
	v.mu.Unlock()
	t.Logf("default backoff: %d frames in 4 s after the first refusal; channels per retry request (first 20): %v", len(fr), chsPerReq[:min(20, len(chsPerReq))])
	// Found by review (fixed) (see TestRefusedManyChannelsNoStorm): per-channel retry timers
	// send about one request per channel per retry: Deribit's credit pool
	// (20 requests/s sustained, 10028 + session closed beyond) is spent on
	// refusals alone.
	if len(fr) > 100 {
		t.Errorf("%d subscribe retries in 4 s for 1,000 refused channels (Deribit allows ~20 requests/s)", len(fr))
	}
}

// The consequence with a shared Deribit limiter: refusal retries eat the
// sub-account's credits and the program's own requests are refused.
func TestRefusalRetriesStarveOwnRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("4 s")
	}
	v := newVenue(t, false)
	v.setRefuse(func(ch string) bool { return ch != "" && ch[0] == 'n' })
	lim := ratelimit.Deribit(ratelimit.DeribitTier4)
	c := connect(t, v, actors.WithRetryDelay(time.Second), actors.WithMaxBackoff(30*time.Second),
		actors.WithRateLimiter(lim, actors.RateReject))
	ctx := testutil.Context(t, 20*time.Second)
	chs := make([]string, 1000)
	for i := range chs {
		chs[i] = fmt.Sprintf("nope.%04d", i)
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := c.Subscribe(sctx, chs...)
	cancel()
	t.Logf("first subscribe: %.120v", err)
	time.Sleep(time.Second)
	refused := 0
	for i := 0; i < 20; i++ {
		if _, err := c.Call(ctx, "public/get_time", nil); errors.Is(err, actors.ErrRateLimited) {
			refused++
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d of 20 own calls (10/s, half the credit refill) refused; limiter %+v", refused, lim.Stats())
	// Found by review (fixed): consequence of the retry storm: the refusal retries draw on
	// the sub-account's credits, and the program's own requests at 10/s (half
	// of Deribit's sustained 20/s) are refused by its own limiter.
	if refused > 0 {
		t.Errorf("%d of 20 own calls refused (ErrRateLimited): the subscription retries spent the credits", refused)
	}
}
