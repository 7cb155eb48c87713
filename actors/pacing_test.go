package actors_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/transport/wstest"
)

func TestRateRejectRefusesAtOnceAndSendsNothing(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false))
	defer srv.Close()
	lim := ratelimit.Simple(0.01, 2) // two now, the next in 100 s
	c := connect(t, newSystem(t), srv.URL(), actors.WithRateLimiter(lim, actors.RateReject))
	ctx := ctxT(t, 5*time.Second)
	for i := 0; i < 2; i++ {
		if err := c.Send(ctx, []byte(`{"n":1}`)); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	err := c.Send(ctx, []byte(`{"n":3}`))
	if !errors.Is(err, actors.ErrRateLimited) || errors.Is(err, actors.ErrDisconnected) {
		t.Fatalf("third send: %v, want only ErrRateLimited", err)
	}
	if _, err := c.Call(ctx, "public/test", nil); !errors.Is(err, actors.ErrRateLimited) {
		t.Fatalf("call over the limit: %v", err)
	}
	conns, _ := srv.WaitConns(ctx, 1)
	if _, err := conns[0].WaitReceived(ctx, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // nothing more may arrive
	if n := conns[0].ReceivedCount(); n != 2 {
		t.Fatalf("server received %d frames, want 2", n)
	}
	h := c.Health()
	if h.RateLimited != 2 || h.Pending != 0 || h.MessagesOut != 2 {
		t.Fatalf("health: RateLimited %d Pending %d MessagesOut %d, want 2, 0, 2", h.RateLimited, h.Pending, h.MessagesOut)
	}
}

func TestRateWaitPacesWithinTheDeadline(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	lim := ratelimit.Simple(10, 1) // one every 100 ms
	c := connect(t, newSystem(t), srv.URL(), actors.WithRateLimiter(lim, actors.RateWait))
	ctx := ctxT(t, 10*time.Second)
	for i := 0; i < 6; i++ {
		if _, err := c.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	h := c.Health()
	if h.RateLimitWaits < 4 || h.RateLimited != 0 {
		t.Fatalf("6 calls at 10/s with burst 1: %d waited, %d refused; want >= 4 waits and none refused", h.RateLimitWaits, h.RateLimited)
	}
	// A token that would come after the deadline is refused at once, not
	// after waiting for nothing, and the request is not left pending.
	slow := ratelimit.Simple(0.01, 1)
	c2 := connect(t, newSystem(t), srv.URL(), actors.WithRateLimiter(slow, actors.RateWait), actors.WithRequestTimeout(2*time.Second))
	if _, err := c2.Call(ctx, "public/get_time", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c2.Call(ctx, "public/get_time", nil)
	if !errors.Is(err, actors.ErrRateLimited) {
		t.Fatalf("call past the deadline: %v, want ErrRateLimited", err)
	}
	// Waiting would have taken the whole request timeout (2 s) and failed
	// then: the refusal comes long before.
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Fatalf("refusal took %v: it waited for nothing", el)
	}
	if h := c2.Health(); h.Pending != 0 || h.RateLimited != 1 {
		t.Fatalf("pending %d, refused %d", h.Pending, h.RateLimited)
	}
}

// Deribit closes the session when test_request goes unanswered: the answer
// must go out even when the user's traffic has emptied the bucket, and it
// is counted.
func TestHeartbeatRepliesAreChargedNotDelayed(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitHeartbeat(150 * time.Millisecond))
	defer srv.Close()
	lim := ratelimit.Simple(0.01, 1)
	c := connect(t, newSystem(t), srv.URL(),
		actors.WithHeartbeat(actors.HeartbeatDeribit, 10*time.Second),
		actors.WithRateLimiter(lim, actors.RateReject))
	ctx := ctxT(t, 5*time.Second)
	if err := c.Send(ctx, []byte(`{"spend":"the token"}`)); err != nil {
		t.Fatal(err)
	}
	conns, _ := srv.WaitConns(ctx, 1)
	eventually(t, 5*time.Second, "three test_requests answered", func() bool { return conns[0].TestResponses() >= 3 })
	if conns[0].HeartbeatTimedOut() || c.Health().Generation != 1 {
		t.Fatal("the server closed the session: a heartbeat reply was held back")
	}
	if st := lim.Stats(); st.Charged < 3 {
		t.Fatalf("limiter charged %d heartbeat replies, want >= 3", st.Charged)
	}
	if err := c.Send(ctx, []byte(`{}`)); !errors.Is(err, actors.ErrRateLimited) {
		t.Fatalf("user send after the replies overdrew the bucket: %v", err)
	}
}

// A restore goes through the limiter too, and waits for its tokens even
// when the user's policy is to reject.
func TestRestoreIsPacedByTheLimiter(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	lim := ratelimit.Simple(1, 1) // the restore finds the bucket empty for up to 1 s
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithRateLimiter(lim, actors.RateReject))...)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Subscribe(ctx, "trades.BTC.raw"); err != nil {
		t.Fatal(err)
	}
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnected with the restore", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	conns, _ := srv.WaitConns(ctx, 1)
	if !conns[0].Subscribed("trades.BTC.raw") {
		t.Fatal("restore did not happen")
	}
	if w := lim.Stats().Waited; w < 1 {
		t.Fatalf("the restore did not wait for its token (waited %d)", w)
	}
}

// Clients sharing one dial limiter reconnect no faster than it allows,
// whatever their own backoff says.
func TestDialLimiterPacesAPoolsReconnects(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	dl := ratelimit.Simple(10, 3) // 3 at once, then one every 100 ms
	var cs []*actors.Client
	for i := 0; i < 3; i++ {
		cs = append(cs, connect(t, sys, srv.URL(), fast(func(c *actors.Config) { c.DialLimiter = dl }, actors.WithRetryCount(20))...))
	}
	ctx := ctxT(t, 10*time.Second)
	if _, err := srv.WaitConns(ctx, 3); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	srv.DropAll()
	eventually(t, 5*time.Second, "all reconnected", func() bool {
		for _, c := range cs {
			if c.Health().Generation < 2 || c.State() != actors.StateConnected {
				return false
			}
		}
		return true
	})
	el := time.Since(start)
	if st := dl.Stats(); st.Waited < 2 {
		t.Fatalf("3 redials with an empty bucket: %d waited, want >= 2 (stats %+v)", st.Waited, st)
	}
	// Whatever the timing, attempts never beat burst + rate * elapsed.
	if n := srv.TotalConns(); float64(n) > 3+10*el.Seconds()+1 {
		t.Fatalf("%d connections in %v through a 10/s limiter with burst 3", n, el)
	}
}

func TestRatePolicyValidated(t *testing.T) {
	_, err := actors.NewConfig("ws://127.0.0.1:1/", actors.WithRateLimiter(ratelimit.Simple(1, 1), actors.RatePolicy(7)))
	var ce *actors.ConfigError
	if !errors.As(err, &ce) || ce.Field != "RatePolicy" {
		t.Fatalf("err %v, want a ConfigError naming RatePolicy", err)
	}
}

// A Subscribe that needs two requests and is refused after the first was
// applied says what was applied, and never claims that nothing was sent.
func TestPartlyAppliedSubscribeIsAPartialError(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	lim := ratelimit.Simple(0.01, 1)
	c := connect(t, newSystem(t), srv.URL(), actors.WithRateLimiter(lim, actors.RateReject))
	ctx := ctxT(t, time.Second) // the second request's token is 100 s away
	err := c.Subscribe(ctx, "ticker.BTC", "user.orders.BTC")
	var pe *actors.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Applied, []string{"ticker.BTC"}) {
		t.Fatalf("Subscribe: %v, want a PartialError with ticker.BTC applied", err)
	}
	if errors.Is(err, actors.ErrRateLimited) {
		t.Fatal("a partly applied Subscribe matches ErrRateLimited, which promises nothing was sent")
	}
	if !slices.Equal(pe.NotApplied, []string{"user.orders.BTC"}) {
		t.Fatalf("NotApplied = %v", pe.NotApplied)
	}
	// Both stay wanted (intent): the refused one is retried.
	if got := c.Subscriptions(); !slices.Equal(got, []string{"ticker.BTC", "user.orders.BTC"}) {
		t.Fatalf("Subscriptions = %v", got)
	}
}
