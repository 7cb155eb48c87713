package review16

import (
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetStrictUnderAOneWayCut: Rule.Strict promises that "the rule
// holds even as a partition begins": the holder keeps a share back for a
// node it has not heard from for a second, and the node cut off waits a
// Window since it last reached the holder. Under a one-way cut (what the
// holder sends C is lost; what C sends arrives: an asymmetric route, a
// firewall's state table), the holder still hears C's hellos (and its
// requests), so it keeps nothing back and grants the whole Burst; C's
// requests time out (AskTimeout) and C, which last reached the holder
// long ago, draws on its local share at once. Rule 4 in any 2 s, Share 2,
// Strict: the holder's node draws 4, then C one.
func TestBudgetStrictUnderAOneWayCut(t *testing.T) {
	openFindingB(t, 10)
	rule := budget.Rule{Key: "venue@198.51.100.5", Window: 2 * time.Second, Burst: 4, Share: 2, Strict: true}
	bp := startBudgetPair(t, rule, true)
	px, ctl, holder := bp.px, bp.ctl, bp.holder
	c := 1 - holder
	var at []int64
	getJSON(t, ctl(c)+"dial?n=1", &at) // C reaches the holder
	if len(at) != 1 {
		t.Fatalf("C's first attempt: %v", at)
	}
	time.Sleep(3500 * time.Millisecond) // that slot out of every window
	px[c].set(hole)                     // what the holder sends C is lost; C's own link to the holder works
	var all []time.Time
	done := make(chan []int64, 1)
	getJSON(t, ctl(holder)+"dial?n=4", &at)
	go func() {
		var cat []int64
		getJSON(t, ctl(c)+"dial?n=1", &cat)
		done <- cat
	}()
	for _, n := range at {
		all = append(all, time.Unix(0, n))
	}
	for _, n := range <-done {
		all = append(all, time.Unix(0, n))
	}
	px[c].set(pass)
	var rel []string
	got := maxInWindow(all, rule.Window)
	for _, a := range all {
		rel = append(rel, a.Sub(all[0]).Round(time.Millisecond).String())
	}
	t.Logf("attempts at %v", rel)
	if got > rule.Burst {
		t.Errorf("Strict rule of %d in any %v, one-way cut from the holder to C: %d attempts in one window", rule.Burst, rule.Window, got)
	}
}
