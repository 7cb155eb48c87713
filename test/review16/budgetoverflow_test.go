package review16

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetHugeWindowIsNotNoLimit: Limiter accepts any positive Window,
// and the holder keeps the longest Window any caller sent and adds Margin
// to it. A Window of math.MaxInt64 (a "never again" rule, or one hostile
// BudgetTake) plus the default Margin overflows to a negative span: the
// strictest rule becomes no rule. One request through it, then a
// limiter of 2 in any 1 s for the same key draws 10 at once.
func TestBudgetHugeWindowIsNotNoLimit(t *testing.T) {
	sys := quietSystem(t)
	svc, err := budget.Start(sys, holderHere(sys))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	huge, err := svc.Limiter(budget.Rule{Key: "venue@198.51.100.9", Window: time.Duration(math.MaxInt64), Burst: 1})
	if err != nil {
		t.Logf("a Window of MaxInt64 refused: %v (held up)", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = huge.Wait(ctx, ratelimit.Frame{Data: []byte("dial")})
	cancel()
	good, err := svc.Limiter(budget.Rule{Key: "venue@198.51.100.9", Window: time.Second, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := dials(t, good, 10, 3*time.Second)
	if n := maxInWindow(got, time.Second); n > 2 {
		t.Errorf("after one request with Window MaxInt64 (Burst 1), a limiter of 2 in any 1 s drew %d in one second: the window's span overflowed", n)
	}
}
