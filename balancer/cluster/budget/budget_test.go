package budget_test

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer/cluster/budget"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// heldHere is a Service on a system of its own that holds the windows
// (the lowest member is itself), stopped when the test ends.
func heldHere(t *testing.T) (*actor.ActorSystem, *budget.Service) {
	t.Helper()
	sys := testutil.NewSystem(t)
	s, err := budget.Start(sys, func() []*protocluster.Member { return []*protocluster.Member{{Id: sys.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return sys, s
}

// This node holds the window (the lowest member is itself): attempts are
// granted by the holder, none degrades.
func TestHeldHere(t *testing.T) {
	_, s := heldHere(t)
	l, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: time.Minute, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := l.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats("venue@127.0.0.1"); st.Granted != 5 || st.Degraded != 0 {
		t.Fatalf("stats %+v, want 5 granted", st)
	}
}

// The holder cannot be asked (its member is at an address nothing serves):
// each attempt falls back to the local window, Burst/Share per Window.
func TestUnreachableClusterDegradesToTheLocalShare(t *testing.T) {
	sys := testutil.NewSystem(t)
	far := &protocluster.Member{Id: "0-far", Host: "127.0.0.1", Port: 1}
	s, err := budget.Start(sys, func() []*protocluster.Member { return []*protocluster.Member{far, {Id: sys.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	l, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: time.Minute, Burst: 6, Share: 3, AskTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the local share: 6/3
		if err := l.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
			t.Fatal(err)
		}
	}
	// A third within the window waits for the local share's next slot, a
	// minute away: it is still waiting when the Service stops, and then
	// refused (the limiter's own bucket, of the same share, is full).
	third := make(chan error, 1)
	go func() { third <- l.Wait(context.Background(), ratelimit.Frame{}) }()
	select {
	case err := <-third:
		t.Fatalf("a third attempt within the window went through: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s.Stop()
	if err := <-third; !errors.Is(err, ratelimit.ErrRateLimited) {
		t.Fatalf("the third attempt after Stop: %v, want ErrRateLimited", err)
	}
	if st := s.Stats("venue@127.0.0.1"); st.Degraded != 3 || st.Granted != 0 {
		t.Fatalf("stats %+v, want 3 degraded", st)
	}
}

// A client closed while it waits for its slot (a minute away) closes now:
// the wait ends with the dial's ctx. Before, Close waited for the slot.
func TestCloseEndsTheWaitForASlot(t *testing.T) {
	sys, s := heldHere(t)
	l, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: time.Minute, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
		t.Fatal(err) // the window's one slot
	}
	srv := wstest.NewServer()
	defer srv.Close()
	cfg, err := actors.NewConfig(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialLimiter = l
	c, err := actors.Spawn(sys.Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the client waiting for its slot", func() bool {
		return s.Stats("venue@127.0.0.1").Granted == 1 && c.State() == actors.StateConnecting
	})
	time.Sleep(100 * time.Millisecond) // in the wait
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the slot, a minute away")
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("the closed client dialled: %d connections", n)
	}
}

// One key, one rule: the holder keeps the strictest rule any caller sent
// for a key, so a node with a looser one (Burst 50 beside 5: a rolling
// deploy, a typo) cannot take what the others were kept from. Before, each
// request was judged by its own rule: 10 attempts in one 2 s window
// (review16 finding 1).
func TestOneKeyHasTheStrictestRule(t *testing.T) {
	_, s := heldHere(t)
	const window = 2 * time.Second
	strict, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: window, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	loose, err := s.Limiter(budget.Rule{Key: "venue@127.0.0.1", Window: window, Burst: 50})
	if err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	for i := 0; i < 10; i++ {
		l := strict
		if i >= 5 {
			l = loose
		}
		if err := l.Wait(testutil.Context(t, 10*time.Second), ratelimit.Frame{}); err != nil {
			t.Fatal(err)
		}
		at = append(at, time.Now())
	}
	// The sixth (the loose node's first) waited for the strict rule's
	// window: at least a window after the first.
	if gap := at[5].Sub(at[0]); gap < window {
		t.Errorf("6 attempts within %v (the sixth %v after the first): the loose rule was applied", window, gap)
	}
}

// A rule shared by more nodes than its Burst cannot be kept by local
// windows of at least one attempt each: refused (review16 finding 7).
func TestShareAboveBurstIsRefused(t *testing.T) {
	_, s := heldHere(t)
	if _, err := s.Limiter(budget.Rule{Key: "k", Window: time.Second, Burst: 2, Share: 3}); err == nil || !strings.Contains(err.Error(), "Share 3 is more than Burst 2") {
		t.Fatalf("Share 3 over Burst 2: %v", err)
	}
	if _, err := s.Limiter(budget.Rule{Key: "k", Window: time.Second, Burst: 3, Share: 3}); err != nil {
		t.Fatal(err)
	}
}

// A node cut off from the holder draws its local share while the others
// still reach it: the holder keeps one share for each node of the Share it
// does not hear from (it may be drawing alone), so the nodes together stay
// within the rule. Before, the holder granted the whole Burst to those it
// heard from: 8 attempts in a window of a rule of 6 (review16 finding 2).
func TestCutOffNodeKeepsTheRule(t *testing.T) {
	rule := budget.Rule{Key: "venue@127.0.0.1", Window: 2 * time.Second, Burst: 6, Share: 3, AskTimeout: 200 * time.Millisecond}
	sysA := testutil.NewSystem(t)
	a, err := budget.Start(sysA, func() []*protocluster.Member { return []*protocluster.Member{{Id: sysA.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	sysC := testutil.NewSystem(t)
	far := &protocluster.Member{Id: "0-far", Host: "127.0.0.1", Port: 1} // the holder as C sees it: unreachable
	c, err := budget.Start(sysC, func() []*protocluster.Member { return []*protocluster.Member{far, {Id: sysC.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	la, err := a.Limiter(rule)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := c.Limiter(rule)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var at []time.Time
	dial := func(l *ratelimit.Limiter, n int) {
		for i := 0; i < n; i++ {
			if err := l.Wait(testutil.Context(t, 10*time.Second), ratelimit.Frame{}); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); dial(la, 6) }()
	go func() { defer wg.Done(); dial(lc, 2) }()
	wg.Wait()
	if st := c.Stats(rule.Key); st.Degraded != 2 {
		t.Fatalf("C's stats %+v: the test did not cut it off", st)
	}
	if got := maxIn(at, rule.Window); got > rule.Burst {
		t.Errorf("%d attempts in one %v window; the rule is %d", got, rule.Window, rule.Burst)
	}
}

// Strict: a node cut off draws nothing alone until a Window has passed
// since it last reached the holder.
func TestStrictCutOffNodeWaitsAWindow(t *testing.T) {
	rule := budget.Rule{Key: "venue@127.0.0.1", Window: time.Second, Burst: 6, Share: 3, AskTimeout: 100 * time.Millisecond, Strict: true}
	sys := testutil.NewSystem(t)
	far := &protocluster.Member{Id: "0-far", Host: "127.0.0.1", Port: 1}
	s, err := budget.Start(sys, func() []*protocluster.Member { return []*protocluster.Member{far, {Id: sys.ID}} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	l, err := s.Limiter(rule)
	if err != nil {
		t.Fatal(err)
	}
	made := time.Now()
	if err := l.Wait(testutil.Context(t, 10*time.Second), ratelimit.Frame{}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(made); waited < rule.Window+budget.HelloInterval {
		t.Errorf("the first attempt of a strict node cut off came %v after its limiter was made, before a window", waited)
	}
}

// maxIn is the most times in any span-long interval.
func maxIn(ts []time.Time, span time.Duration) int {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best := 0
	for i := range ts {
		j := i
		for j < len(ts) && ts[j].Sub(ts[i]) < span {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// A rule sent once by mistake (an hour, Burst 1) rules the key only while
// it counts: its own window after it was last sent; then the key's usual
// rule is back. And rules past the bounds are refused: a Window of
// MaxInt64 had wrapped to no limit at all (review16b findings 1, 14).
func TestAStrayRuleExpiresAndHugeRulesAreRefused(t *testing.T) {
	_, s := heldHere(t)
	usual, err := s.Limiter(budget.Rule{Key: "k", Window: 200 * time.Millisecond, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	stray, err := s.Limiter(budget.Rule{Key: "k", Window: 300 * time.Millisecond, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := stray.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the stray rule's window and margin are over
	start := time.Now()
	for i := 0; i < 10; i++ {
		if err := usual.Wait(testutil.Context(t, 5*time.Second), ratelimit.Frame{}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 2*time.Second { // under the stray rule: at least 2.7 s
		t.Errorf("10 attempts under the usual rule (100 in 200 ms) took %v: the stray rule still rules", took)
	}
	for _, r := range []budget.Rule{
		{Key: "k", Window: time.Duration(math.MaxInt64), Burst: 1},
		{Key: "k", Window: time.Second, Burst: 1, Margin: 48 * time.Hour},
		{Key: strings.Repeat("k", budget.MaxKey+1), Window: time.Second, Burst: 1},
	} {
		if _, err := s.Limiter(r); err == nil {
			t.Errorf("rule %q window %v margin %v accepted", r.Key[:min(len(r.Key), 8)], r.Window, r.Margin)
		}
	}
}
