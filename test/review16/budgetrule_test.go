package review16

import (
	"context"
	"testing"
	"time"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetOneStrictRuleLocksTheKeyForGood: the holder keeps the
// strictest rule any caller ever sent for a key (review16's fix 1), and
// never forgets it. One request with a typo'd rule (Window 1 h instead of
// 1 s; Burst 1), from a node that is then gone (or a hostile member),
// throttles every node dialling from that IP to one attempt per hour for
// as long as the holder runs: the correct nodes' clients are told to wait
// about an hour for their next dial. Nor can a rule ever be loosened
// (a rolling deploy raising Burst) without restarting the holder.
func TestBudgetOneStrictRuleLocksTheKeyForGood(t *testing.T) {
	openFindingB(t, 1)
	sys := quietSystem(t)
	svc, err := budget.Start(sys, holderHere(sys))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	good, err := svc.Limiter(budget.Rule{Key: "venue@198.51.100.7", Window: time.Second, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := dials(t, good, 10, 3*time.Second); len(got) != 10 {
		t.Fatalf("the correct rule alone: %d of 10 attempts let through", len(got))
	}
	typo, err := svc.Limiter(budget.Rule{Key: "venue@198.51.100.7", Window: time.Hour, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = typo.Wait(ctx, ratelimit.Frame{Data: []byte("dial")}) // the one request with the typo
	cancel()
	// The node with the typo is gone; the others go on with the right rule,
	// well after its window (1 s) is over.
	time.Sleep(1500 * time.Millisecond)
	got := dials(t, good, 10, 5*time.Second)
	if len(got) < 10 {
		t.Errorf("after one request with Window 1h, Burst 1 (then gone): %d of 10 attempts under Rule{Window: 1s, Burst: 100} within 5 s; the key keeps the typo for the holder's lifetime", len(got))
	}
}

// TestBudgetOneLargeShareThrottlesTheKey: the same with Share. The holder
// keeps the largest Share any caller sent, with the smallest Burst any
// sent: one valid limiter of Rule{Burst: 1000, Share: 1000} (a node that
// counts its fleet differently) next to Rule{Burst: 10, Share: 2} makes
// the holder keep a share (Burst/Share, at least 1) back for 998 nodes it
// never heard of: it grants 1 attempt per window, for good.
func TestBudgetOneLargeShareThrottlesTheKey(t *testing.T) {
	sys := quietSystem(t)
	svc, err := budget.Start(sys, holderHere(sys))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	good, err := svc.Limiter(budget.Rule{Key: "venue@198.51.100.10", Window: time.Second, Burst: 10, Share: 2})
	if err != nil {
		t.Fatal(err)
	}
	wide, err := svc.Limiter(budget.Rule{Key: "venue@198.51.100.10", Window: time.Second, Burst: 1000, Share: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = wide.Wait(ctx, ratelimit.Frame{Data: []byte("dial")})
	cancel()
	time.Sleep(1200 * time.Millisecond)
	got := dials(t, good, 5, 1500*time.Millisecond)
	if len(got) < 4 {
		t.Errorf("after one request with Rule{Burst: 1000, Share: 1000} for the key, Rule{Window: 1s, Burst: 10, Share: 2} let %d of 5 attempts through in 1.5 s", len(got))
	}
}
