package review13

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func baseOpts(extra ...actors.Option) []actors.Option {
	o := []actors.Option{
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0),
		actors.WithRetryDelay(20 * time.Millisecond),
		actors.WithMaxBackoff(200 * time.Millisecond),
		actors.WithRetryCount(actors.RetryForever),
		actors.WithRequestTimeout(2 * time.Second),
		func(c *actors.Config) { c.CloseWait = 2 * time.Second },
	}
	return append(o, extra...)
}

func connect(t *testing.T, v *venue, extra ...actors.Option) *actors.Client {
	t.Helper()
	sys := testutil.NewSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, v.url, baseOpts(extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func chanState(c *actors.Client, ch string) (actors.ChannelStatus, bool) {
	for _, s := range c.Health().Channels {
		if s.Channel == ch {
			return s, true
		}
	}
	return actors.ChannelStatus{}, false
}

// Subscribe while the venue is down (reconnecting): the intent is kept and
// applied once the venue is back; an Unsubscribe while down is nil at once and
// the channel does not come back.
func TestIntentWhileReconnecting(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 5*time.Second)
	if err := c.Subscribe(ctx, "a.1", "b.1"); err != nil {
		t.Fatal(err)
	}
	v.down.Store(true)
	v.dropAll()
	eventually(t, 2*time.Second, "reconnecting", func() bool { return c.State() == actors.StateReconnecting })

	sctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	start := time.Now()
	err := c.Subscribe(sctx, "c.1")
	cancel()
	if !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe while down: want ErrTimeout+DeadlineExceeded, got %v", err)
	}
	if !strings.Contains(err.Error(), "not connected") {
		t.Errorf("error should say 'not connected': %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Subscribe took %v past its 150ms ctx", d)
	}
	// cancelled ctx: context.Canceled, not ErrTimeout
	cctx, ccancel := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); ccancel() }()
	err = c.Subscribe(cctx, "d.1")
	if !errors.Is(err, context.Canceled) || errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("cancelled Subscribe: want Canceled and not ErrTimeout, got %v", err)
	}
	ustart := time.Now()
	if err := c.Unsubscribe(ctx, "a.1"); err != nil {
		t.Fatalf("Unsubscribe while down: want nil, got %v", err)
	}
	if time.Since(ustart) > 2*time.Second { // "at once" against a 30 s RequestTimeout, generous for a loaded run
		t.Errorf("Unsubscribe while down should return at once, took %v", time.Since(ustart))
	}
	got := c.Subscriptions()
	want := []string{"b.1", "c.1", "d.1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("wanted set %v, want %v", got, want)
	}
	for _, s := range c.Health().Channels {
		if s.State == actors.ChannelActive {
			t.Errorf("channel %s active while disconnected", s.Channel)
		}
	}
	v.down.Store(false)
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	subs := v.newestSubs()
	if subs["a.1"] || !subs["b.1"] || !subs["c.1"] || !subs["d.1"] {
		t.Fatalf("venue subs after reconnect: %v", subs)
	}
	for _, s := range c.Health().Channels {
		if s.State != actors.ChannelActive {
			t.Errorf("after reconnect %s is %v", s.Channel, s.State)
		}
	}
	if c.Health().Degraded {
		t.Error("degraded after full restore")
	}
}

// A venue that refuses one channel forever: PartialError, ChannelFailed with
// Err/NextRetry/Attempts, Degraded, retried on the live connection with a
// bounded backoff (no storm).
func TestRefusedForeverIsRetriedBounded(t *testing.T) {
	v := newVenue(t, false)
	v.errSecret.Store(" key=SuperSecretValue42xyz")
	v.setRefuse(func(ch string) bool { return strings.HasPrefix(ch, "bad.") })
	var mu sync.Mutex
	var failed [][]string
	logs, lg := observedLogger()
	c := connect(t, v, actors.WithSecrets("SuperSecretValue42xyz"), actors.WithLogger(lg),
		func(c *actors.Config) {
			c.OnRestoreFailed = func(_ *actorPID, chs []string, err error) {
				mu.Lock()
				failed = append(failed, chs)
				mu.Unlock()
			}
		})
	ctx := testutil.Context(t, 5*time.Second)
	err := c.Subscribe(ctx, "good.1", "bad.1")
	var pe *actors.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("want *PartialError, got %T %v", err, err)
	}
	if fmt.Sprint(pe.Applied) != "[good.1]" || fmt.Sprint(pe.NotApplied) != "[bad.1]" {
		t.Fatalf("Applied %v NotApplied %v", pe.Applied, pe.NotApplied)
	}
	if errors.Is(err, actors.ErrNotConnected) || errors.Is(err, actors.ErrRateLimited) {
		t.Error("PartialError matches a nothing-sent error")
	}
	if strings.Contains(err.Error(), "SuperSecretValue42xyz") {
		t.Errorf("secret in PartialError text: %v", err)
	}
	st, ok := chanState(c, "bad.1")
	if !ok || st.State != actors.ChannelFailed || st.Err == nil || !st.Wanted {
		t.Fatalf("bad.1 status %+v", st)
	}
	if st.NextRetry.IsZero() || st.Attempts < 1 {
		t.Errorf("failed channel lacks NextRetry/Attempts: %+v", st)
	}
	if strings.Contains(fmt.Sprint(st.Err), "SuperSecretValue42xyz") {
		t.Errorf("secret in ChannelStatus.Err: %v", st.Err)
	}
	if g, _ := chanState(c, "good.1"); g.State != actors.ChannelActive {
		t.Errorf("good.1 %v", g.State)
	}
	if !c.Health().Degraded {
		t.Error("not Degraded with a refused channel")
	}
	// Only-refused subscribe: error naming the channel, wrapping *RPCError.
	err = c.Subscribe(ctx, "bad.2")
	var re *actors.RPCError
	if err == nil || !errors.As(err, &re) || !strings.Contains(err.Error(), "bad.2") {
		t.Errorf("all-refused subscribe: want an error naming bad.2 wrapping *RPCError, got %v", err)
	}
	// Watch the retries for 3 s: with RetryDelay 20ms, MaxBackoff 200ms,
	// the k-th waits [c/2,c]: at least 100ms once capped -> at most ~35.
	before := len(v.requestsFor("bad.1"))
	time.Sleep(3 * time.Second)
	n := len(v.requestsFor("bad.1")) - before
	t.Logf("bad.1 re-asked %d times in 3 s", n)
	if n < 3 {
		t.Errorf("refused channel not retried on the live connection (%d in 3s)", n)
	}
	if n > 40 {
		t.Errorf("retry storm: %d requests in 3s", n)
	}
	// gaps between consecutive retries respect >= c/2 once capped
	reqs := v.requestsFor("bad.1")
	for i := len(reqs) - 5; i > 0 && i < len(reqs); i++ {
		if gap := reqs[i].t.Sub(reqs[i-1].t); gap < 90*time.Millisecond {
			t.Errorf("retry gap %v < c/2 (100ms)", gap)
		}
	}
	if v.upgrades.Load() != 1 {
		t.Errorf("refusals should be retried on the live connection, yet %d connections", v.upgrades.Load())
	}
	// After a reconnect: restore refuses bad.*, OnRestoreFailed called.
	v.dropAll()
	eventually(t, 3*time.Second, "reconnected", func() bool { return c.Health().Generation >= 2 && c.State() == actors.StateConnected })
	eventually(t, 2*time.Second, "OnRestoreFailed", func() bool { mu.Lock(); defer mu.Unlock(); return len(failed) > 0 })
	for _, l := range logs.All() {
		if strings.Contains(l.Message+fmt.Sprint(l.Context), "SuperSecretValue42xyz") {
			t.Errorf("secret in log: %s %v", l.Message, l.Context)
		}
	}
	// Unsubscribing the refused channel stops the retries.
	if err := c.Unsubscribe(ctx, "bad.1", "bad.2"); err != nil {
		t.Logf("unsubscribe of refused channels: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	k := len(v.requestsFor("bad.1"))
	time.Sleep(700 * time.Millisecond)
	if k2 := len(v.requestsFor("bad.1")); k2 != k {
		t.Errorf("bad.1 still re-asked after Unsubscribe (%d -> %d)", k, k2)
	}
	eventually(t, 2*time.Second, "not degraded", func() bool { return !c.Health().Degraded })
}

// A venue that confirms a channel not asked for: it never joins the set.
func TestExtraConfirmationIgnored(t *testing.T) {
	v := newVenue(t, false)
	v.setExtra("evil.injected")
	c := connect(t, v)
	ctx := testutil.Context(t, 5*time.Second)
	if err := c.Subscribe(ctx, "x.1"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Subscriptions()) != "[x.1]" {
		t.Fatalf("wanted set %v", c.Subscriptions())
	}
	if c.Health().ConfirmationsIgnored == 0 {
		t.Error("ConfirmationsIgnored not counted")
	}
	if _, ok := chanState(c, "evil.injected"); ok {
		t.Error("injected channel in Health.Channels")
	}
	v.setExtra()
	v.dropAll()
	eventually(t, 3*time.Second, "reconnected", func() bool { return c.Health().Generation >= 2 && c.State() == actors.StateConnected })
	for _, r := range v.requestsFor("evil.injected") {
		t.Errorf("restore asked for injected channel: %+v", r)
	}
}

// A venue that never answers, then one that answers twice.
func TestNoAnswerAndTwice(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	v.noAnswer.Store(true)
	ctx := testutil.Context(t, 5*time.Second)
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := c.Subscribe(sctx, "q.1")
	cancel()
	if !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no answer: %v", err)
	}
	if !strings.Contains(err.Error(), "has not answered") {
		t.Errorf("error should say the venue has not answered: %v", err)
	}
	if st, _ := chanState(c, "q.1"); st.State != actors.ChannelPending {
		t.Errorf("unanswered channel state %v, want pending", st.State)
	}
	if !c.Health().Degraded {
		t.Error("pending channel but not degraded")
	}
	// Venue answers now on a fresh connection: restore applies it.
	v.noAnswer.Store(false)
	v.twice.Store(true)
	v.dropAll()
	eventually(t, 4*time.Second, "q.1 active", func() bool {
		st, _ := chanState(c, "q.1")
		return st.State == actors.ChannelActive
	})
	if err := c.Subscribe(ctx, "r.1", "r.2"); err != nil {
		t.Fatalf("double answer: %v", err)
	}
	// unsubscribe answered twice too
	if err := c.Unsubscribe(ctx, "r.1"); err != nil {
		t.Fatalf("double answered unsubscribe: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if fmt.Sprint(c.Subscriptions()) != "[q.1 r.2]" {
		t.Errorf("set %v", c.Subscriptions())
	}
	if c.State() != actors.StateConnected {
		t.Errorf("state %v", c.State())
	}
}

// An answer that arrives after the connection it was asked on is gone must
// not mark the channel active on the new connection.
func TestAnswerAfterReconnect(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 6*time.Second)
	v.delay.Store(int64(400 * time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ctx, "late.1") }()
	time.Sleep(100 * time.Millisecond)
	v.noAnswer.Store(true) // the new connection never answers
	v.dropAll()
	select {
	case err := <-done:
		t.Logf("Subscribe across reconnect: %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("Subscribe did not return within RequestTimeout+1s")
	}
	time.Sleep(600 * time.Millisecond)
	st, _ := chanState(c, "late.1")
	if st.State == actors.ChannelActive {
		t.Errorf("late.1 active though the current connection never confirmed it: %+v", st)
	}
}

// Many goroutines subscribing and unsubscribing the same and different
// channels at once, across a reconnect: the set and the venue converge.
func TestConcurrentIntentConverges(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 20*time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				ch := fmt.Sprintf("c.%d", i%10)
				if (g+i)%2 == 0 {
					_ = c.Subscribe(ctx, ch, fmt.Sprintf("own.%d.%d", g, i))
				} else {
					_ = c.Unsubscribe(ctx, ch)
				}
				if g == 0 && i == 15 {
					v.dropAll()
				}
			}
		}(g)
	}
	wg.Wait()
	// settle: the final ops decide. Make c.* deterministic.
	for i := 0; i < 10; i++ {
		if i%2 == 0 {
			_ = c.Subscribe(ctx, fmt.Sprintf("c.%d", i))
		} else {
			_ = c.Unsubscribe(ctx, fmt.Sprintf("c.%d", i))
		}
	}
	want := c.Subscriptions()
	eventually(t, 5*time.Second, "venue converges to the wanted set", func() bool {
		s := v.newestSubs()
		if len(s) != len(want) {
			return false
		}
		for _, w := range want {
			if !s[w] {
				return false
			}
		}
		return true
	})
	for i := 0; i < 10; i++ {
		ch := fmt.Sprintf("c.%d", i)
		in := sort.SearchStrings(want, ch) < len(want) && want[sort.SearchStrings(want, ch)] == ch
		if in != (i%2 == 0) {
			t.Errorf("%s wanted=%v", ch, in)
		}
	}
	eventually(t, 3*time.Second, "all active", func() bool {
		for _, s := range c.Health().Channels {
			if s.State != actors.ChannelActive || !s.Wanted {
				return false
			}
		}
		return !c.Health().Degraded
	})
}

// Limits on names and the number of channels.
func TestChannelLimits(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 30*time.Second)
	for name, chs := range map[string][]string{
		"empty":     {""},
		"huge":      {strings.Repeat("x", 1025)},
		"huge+good": {"ok.1", strings.Repeat("y", 5000)},
	} {
		err := c.Subscribe(ctx, chs...)
		if !errors.Is(err, actors.ErrInvalidRequest) {
			t.Errorf("%s: want ErrInvalidRequest, got %v", name, err)
		}
	}
	if len(c.Subscriptions()) != 0 {
		t.Errorf("invalid subscribe changed the set: %d", len(c.Subscriptions()))
	}
	if err := c.Subscribe(ctx, strings.Repeat("z", 1024)); err != nil {
		t.Errorf("1024-byte name: %v", err)
	}
	if err := c.Subscribe(ctx, "dup.1", "dup.1", "dup.1"); err != nil {
		t.Errorf("duplicates: %v", err)
	}
	if n := len(c.Subscriptions()); n != 2 {
		t.Errorf("after dup subscribe the set has %d", n)
	}
	// Subscribe() with no channels
	if err := c.Subscribe(ctx); err != nil {
		t.Logf("Subscribe() with no channels: %v", err)
	}
	// 100,000 channels: beyond 65,536 -> ErrInvalidRequest, nothing recorded.
	big := make([]string, 100000)
	for i := range big {
		big[i] = fmt.Sprintf("bulk.%06d", i)
	}
	start := time.Now()
	err := c.Subscribe(ctx, big...)
	if !errors.Is(err, actors.ErrInvalidRequest) {
		t.Errorf("100k channels: want ErrInvalidRequest, got %v", err)
	}
	t.Logf("100k subscribe returned in %v", time.Since(start))
	if n := len(c.Subscriptions()); n != 2 {
		t.Errorf("rejected 100k subscribe left %d wanted", n)
	}
	// 65,534 more is exactly the limit: accepted
	start = time.Now()
	err = c.Subscribe(ctx, big[:65534]...)
	t.Logf("65534 channel subscribe in %v: error text is %d bytes", time.Since(start), len(fmt.Sprint(err)))
	v.mu.Lock()
	nreq, nfr := len(v.reqs), len(v.frames)
	v.mu.Unlock()
	t.Logf("venue saw %d subscribe requests, %d frames", nreq, nfr)
	// Under -race the confirmation of 65,534 channels is not applied within
	// RequestTimeout (see TestSubscribeConfirmIsQuadratic); the intent is.
	if err != nil && len(err.Error()) > 64<<10 {
		// Found by review (fixed): a Subscribe error names every channel it covers: 65,534
		// channels make one error string of ~786 KB (and the same in any
		// log line that carries it). Expected a bounded text (first few
		// names and a count); got the whole list.
		t.Errorf("Subscribe error text is %d bytes: it lists every channel", len(err.Error()))
	}
	if n := len(c.Subscriptions()); n != 65536 {
		t.Errorf("set %d, want 65536", n)
	}
	if err := c.Subscribe(ctx, "one.more"); !errors.Is(err, actors.ErrInvalidRequest) {
		t.Errorf("65537th: want ErrInvalidRequest, got %v", err)
	}
	h := c.Health()
	if len(h.Channels) != 65536 {
		t.Errorf("Health.Channels %d", len(h.Channels))
	}
}

// Deribit-style notifications set ChannelStatus.LastMessage and Health.LastInbound.
func TestLastMessageDeribit(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 5*time.Second)
	if err := c.Subscribe(ctx, "ticker.BTC-PERPETUAL.100ms"); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	v.push(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{"p":1}}}`)
	eventually(t, 2*time.Second, "LastMessage set", func() bool {
		st, _ := chanState(c, "ticker.BTC-PERPETUAL.100ms")
		return !st.LastMessage.IsZero()
	})
	if h := c.Health(); h.LastInbound.Before(before) {
		t.Errorf("LastInbound %v before the push %v", h.LastInbound, before)
	}
}
