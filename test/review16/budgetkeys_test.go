package review16

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetHolderForgetsIdleKeys: the holder keeps at most 4,096 keys'
// windows (maxKeys) and never drops one, however long idle; past that, a
// request for a new key is not answered (each attempt waits AskTimeout,
// 1 s, then draws on the local share alone: no shared rule for that
// key). A long-running pool whose keys change (venue@IP with egress IPs
// rotated, a NAT pool, short-lived venues), or one member's hellos (up to
// 64 keys each, unchecked), uses the table up for good. Here: 4,096 keys
// used once, each with a 100 ms window, long over; then a new key.
// Fixed: idle windows are forgotten when the holder is full.
func TestBudgetHolderForgetsIdleKeys(t *testing.T) {
	sys := quietSystem(t)
	svc, err := budget.Start(sys, holderHere(sys))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 4096; i++ {
		lim, err := svc.Limiter(budget.Rule{Key: fmt.Sprintf("venue@10.0.%d.%d", i/256, i%256), Window: 100 * time.Millisecond, Burst: 5})
		if err != nil {
			t.Fatal(err)
		}
		if err := lim.Wait(ctx, ratelimit.Frame{Data: []byte("dial")}); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	// Every window over, and no node heard of for any (past the holder's
	// second, four hellos, in which a key asked for counts as live; only
	// the 64 keys this service's hellos name stay live). 500 ms was
	// enough before requests counted as being heard of, and kept passing
	// on a loaded machine, where the 4,096 requests took over half a
	// second; on a quiet one they take less and it failed every time.
	time.Sleep(1500 * time.Millisecond)
	key := "venue@203.0.113.9"
	lim, err := svc.Limiter(budget.Rule{Key: key, Window: 100 * time.Millisecond, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := lim.Wait(ctx, ratelimit.Frame{Data: []byte("dial")}); err != nil {
		t.Fatal(err)
	}
	if st := svc.Stats(key); st.Granted != 1 {
		t.Errorf("a new key after 4,096 keys idle for 15 of their windows: the holder did not answer (waited %v, stats %+v): the key has no shared rule, its attempts are local only",
			time.Since(start).Round(time.Millisecond), st)
	}
}
