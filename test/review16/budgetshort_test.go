package review16

import (
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetStrictShortWindowUnderAFullCut: Rule.Strict with a short
// window (4 in any 300 ms, Share 2). Both nodes draw all along; then the
// link between them is black-holed both ways (a real partition, hellos
// included) for 4 s, and healed. In no 300 ms window may the two together
// exceed 4. Seen (5 in a window, 4 runs of 5), in two ways:
//   - as the cut begins: the holder's node draws 4 at 0.8 s (the holder
//     hears the other's last hello until ~1 s after it), and the node cut
//     off draws alone at 1.0 s (its ask timed out, 1 s): Strict's wait is
//     counted from the last grant it received, which was 0.4 s before the
//     cut (it waited for a queued slot), not from its last hello or ask;
//   - as it heals: the holder hears the node's hello again and releases
//     its share (4 at 4.40 s) while the node still draws alone (4.401 s):
//     its local slots are told only with its next request.
func TestBudgetStrictShortWindowUnderAFullCut(t *testing.T) {
	openFindingB(t, 13)
	rule := budget.Rule{Key: "venue@198.51.100.8", Window: 300 * time.Millisecond, Burst: 4, Share: 2, Strict: true}
	bp := startBudgetPair(t, rule, true)
	px, ctl, holder := bp.px, bp.ctl, bp.holder
	var mu sync.Mutex
	var all []time.Time
	who := map[time.Time]int{}
	stop := time.Now().Add(8 * time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				var at []int64
				getJSON(t, ctl(i)+"dial?n=4", &at)
				mu.Lock()
				for _, n := range at {
					all = append(all, time.Unix(0, n))
					who[time.Unix(0, n)] = i
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	cutAt := time.Now()
	px[0].set(hole)
	px[1].set(hole)
	time.Sleep(4 * time.Second)
	px[0].set(pass)
	px[1].set(pass)
	wg.Wait()
	got := maxInWindow(all, rule.Window)
	var hs [2]holderInfo
	for i := 0; i < 2; i++ {
		getJSON(t, ctl(i)+"holder", &hs[i])
	}
	t.Logf("%d attempts in 8 s; at most %d in any %v; node %d holds; stats %+v, %+v", len(all), got, rule.Window, holder, hs[0].Stats, hs[1].Stats)
	if got > rule.Burst {
		for i := range all { // the first window over the rule, by node, from the cut
			j := i
			for j < len(all) && all[j].Sub(all[i]) < rule.Window {
				j++
			}
			if j-i > rule.Burst {
				for _, a := range all[i:j] {
					t.Logf("node %d at %v from the cut (the heal at 4s)", who[a], a.Sub(cutAt).Round(time.Millisecond))
				}
				break
			}
		}
		t.Errorf("Strict, %d in any %v, a full cut for 4 s while both draw: %d in one window", rule.Burst, rule.Window, got)
	}
}
