package budget

import (
	"testing"
	"time"
)

// The holder's window: at most burst slots in any window (plus the
// margin), granted in order, the past forgotten.
func TestWindowReserve(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var w window
	const win, margin = time.Second, 10 * time.Millisecond
	var got []time.Duration
	for i := 0; i < 7; i++ {
		got = append(got, w.reserve(t0, win, 3, margin).Sub(t0))
	}
	want := []time.Duration{0, 0, 0, win + margin, win + margin, win + margin, 2 * (win + margin)}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots %v, want %v", got, want)
		}
	}
	// Much later: the old slots are forgotten, the window is empty again.
	later := t0.Add(time.Hour)
	if d := w.reserve(later, win, 3, margin).Sub(later); d != 0 {
		t.Fatalf("a slot an hour later waits %v", d)
	}
	if n := len(w.slots); n != 1 {
		t.Fatalf("the window keeps %d slots, want 1", n)
	}
}
