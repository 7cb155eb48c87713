package review16

import (
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/budget"
)

// TestBudgetLateAnswerIsNotALateSlot: the holder grants a slot as a delay
// from its own now; the requester adds it to its own now when the answer
// arrives, and gives a slot up only when it wakes more than Margin after
// that. An answer that took longer than Margin to arrive (a requester
// paused between asking and reading the answer, a slow link, a loaded
// holder's writer) is not seen as late: the requester dials a slot the
// holder placed in the past, and the rule is exceeded. Docs: "A slot a
// paused process wakes up to more than Margin late is given up and asked
// again". Here the holder's answers to C reach it 700 ms late (a proxy
// of the test's); rule: 2 in any 2 s, Margin 100 ms.
func TestBudgetLateAnswerIsNotALateSlot(t *testing.T) {
	lateAnswer(t, 700*time.Millisecond)
}

// TestBudgetSameSequenceOnTime: the control of the test above: the same
// sequence with the answers on time keeps the rule (guard: held up).
func TestBudgetSameSequenceOnTime(t *testing.T) {
	lateAnswer(t, 0)
}

func lateAnswer(t *testing.T, delay time.Duration) {
	rule := budget.Rule{Key: "venue@198.51.100.4", Window: 2 * time.Second, Burst: 2, Share: 2, AskTimeout: 5 * time.Second,
		Margin: 100 * time.Millisecond}
	bp := startBudgetPair(t, rule, true)
	px, ctl, holder := bp.px, bp.ctl, bp.holder
	c := 1 - holder
	px[c].delay.Store(int64(delay))
	px[c].set(slowAB) // what the holder sends C arrives late by delay

	var mu sync.Mutex
	var all []time.Time
	add := func(ns []int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range ns {
			all = append(all, time.Unix(0, n))
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var at []int64
		getJSON(t, ctl(c)+"dial?n=1", &at)
		add(at)
	}()
	time.Sleep(200 * time.Millisecond) // C's request is at the holder (C to holder is not slowed)
	var at []int64
	getJSON(t, ctl(holder)+"dial?n=3", &at)
	add(at)
	wg.Wait()
	if len(all) != 4 {
		t.Fatalf("%d of 4 attempts let through", len(all))
	}
	sorted := append([]time.Time(nil), all...)
	got := maxInWindow(sorted, rule.Window)
	var rel []string
	for _, a := range sorted {
		rel = append(rel, a.Sub(sorted[0]).Round(time.Millisecond).String())
	}
	t.Logf("attempts at %v (C's answers late by %v)", rel, delay)
	if got > rule.Burst {
		t.Errorf("%d attempts in one %v window (rule %d): C dialled the slot the holder placed %v before the answer reached it", got, rule.Window, rule.Burst, delay)
	}
}
