package review16

import (
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetRoundTripOverMarginWastesSlots: fix 12 counts a grant's slot
// from the request's sending, and gives up one reached more than Margin
// (default 100 ms) after it. A slot of "now" is reached one round trip
// after sending: on a link whose round trip exceeds Margin (nodes in two
// regions, 150 ms here; a loaded holder) every grant is late. C asks
// maxTries (3) times, each reserving a slot in the holder's window, and
// then draws on its local share: one dial costs the shared budget 4
// slots (the local one is told later), and Stats says Degraded although
// the holder answered each time. Rule 10 in any 2 s, Share 2.
func TestBudgetRoundTripOverMarginWastesSlots(t *testing.T) {
	openFindingB(t, 12)
	roundTripOverMargin(t, false)
}

// TestBudgetRoundTripOverMarginStrict: the same with Rule.Strict: the
// local draw after the three "late" grants waits a Window (plus Margin
// and a second) from the last of them, so every dial from C waits about
// 3 s here, a whole 5 minutes under budget.Binance.
func TestBudgetRoundTripOverMarginStrict(t *testing.T) {
	openFindingB(t, 12)
	roundTripOverMargin(t, true)
}

func roundTripOverMargin(t *testing.T, strict bool) {
	rule := budget.Rule{Key: "venue@198.51.100.6", Window: 2 * time.Second, Burst: 10, Share: 2, Strict: strict}
	bp := startBudgetPair(t, rule, true)
	px, ctl, holder := bp.px, bp.ctl, bp.holder
	c := 1 - holder
	px[c].delay.Store(int64(150 * time.Millisecond))
	px[c].set(slowAB) // what the holder sends C arrives 150 ms late
	var at []int64
	asked := time.Now()
	getJSON(t, ctl(c)+"dial?n=1", &at)
	took := time.Since(asked)
	px[c].set(pass)
	var hc holderInfo
	getJSON(t, ctl(c)+"holder", &hc)
	// What the holder's window has left: the holder's node draws the rest
	// of the Burst at once; those let through within 500 ms.
	start := time.Now()
	var hat []int64
	getJSON(t, ctl(holder)+"dial?n=9", &hat)
	soon := 0
	for _, n := range hat {
		if time.Unix(0, n).Sub(start) < 500*time.Millisecond {
			soon++
		}
	}
	t.Logf("C: %d attempt after %v, stats %+v; the holder's node: %d of 9 at once", len(at), took.Round(time.Millisecond), hc.Stats, soon)
	if hc.Stats.Degraded != 0 || soon < 9 || took > time.Second {
		t.Errorf("one attempt by C over a 150 ms round trip (Margin 100 ms, Strict %v), the window empty: let through after %v; C's stats %+v (the holder answered every ask); of the 9 attempts left in the window, the holder's node got %d at once",
			strict, took.Round(time.Millisecond), hc.Stats, soon)
	}
}
