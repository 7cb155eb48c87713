package actors

import (
	"math"
	"testing"
	"time"
)

// RetryForever: the backoff step count grows without bound; its cap stays
// MaxBackoff and takes a bounded number of doublings to compute.
func TestBackoffCapForAnEndlessEpisode(t *testing.T) {
	for _, k := range []int{1 << 20, 1 << 40, math.MaxInt} {
		if got := backoffCap(k, time.Millisecond, 30*time.Second); got != 30*time.Second {
			t.Fatalf("backoffCap(%d) = %v, want the 30 s cap", k, got)
		}
		if d := backoff(k, time.Millisecond, 30*time.Second); d < 0 || d > 30*time.Second {
			t.Fatalf("backoff(%d) = %v", k, d)
		}
	}
}
