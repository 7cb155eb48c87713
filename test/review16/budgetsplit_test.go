package review16

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetOneHolderAfterAFreeze: the holder of the shared window is
// frozen (SIGSTOP) past the membership's timeout, so the other node sees
// it leave and holds a window of its own; then the holder resumes. There
// must be one holder again (the nodes agree), and the two nodes together
// must keep the rule.
func TestBudgetOneHolderAfterAFreeze(t *testing.T) {
	rule := budget.Rule{Key: "venue@198.51.100.5", Window: 2 * time.Second, Burst: 4, Share: 2}
	bp := startBudgetPair(t, rule, false)
	procs, ctl, holder := bp.procs, bp.ctl, bp.holder
	holders := func() [2]holderInfo { return bp.holders(t) }
	other := 1 - holder
	if err := procs[holder].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = procs[holder].cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	took := waitFor(15*time.Second, func() bool {
		var h holderInfo
		getJSON(t, ctl(other)+"holder", &h)
		return h.Holder == h.Self
	})
	resume()
	if !took {
		t.Fatal("the other node never took the window while the holder was stopped")
	}
	// Agreed: one holder, or the resumed node, taken out of the cluster
	// (it left the other's topology), holds nothing and names none
	// (budget.WithOut): it draws on its local share only.
	agreed := waitFor(15*time.Second, func() bool {
		h := holders()
		return h[0].Holder == h[1].Holder || h[holder].Holder == "" && h[other].Holder == h[other].Self
	})
	h := holders()
	t.Logf("after the resume: node %d says the holder is %s, node %d says %s", holder, h[holder].Holder, other, h[other].Holder)
	if !agreed {
		t.Errorf("15 s after the holder resumed, the nodes name different holders: two windows for one IP")
	}
	time.Sleep(2500 * time.Millisecond) // past a window: the attempts before the freeze are out of it
	var mu sync.Mutex
	var all []time.Time
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var at []int64
			getJSON(t, fmt.Sprintf("%sdial?n=%d", ctl(i), rule.Burst), &at)
			mu.Lock()
			defer mu.Unlock()
			for _, n := range at {
				all = append(all, time.Unix(0, n))
			}
		}(i)
	}
	wg.Wait()
	if got := maxInWindow(all, rule.Window); got > rule.Burst {
		t.Errorf("%d attempts in one %v window from the two nodes (rule %d)", got, rule.Window, rule.Burst)
	}
}
