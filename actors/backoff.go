package actors

import (
	"math"
	"math/rand/v2"
	"time"
)

// backoffCap is the upper bound of attempt k's wait: min(max, base*2^(k-1)),
// for k >= 1.
func backoffCap(k int, base, max time.Duration) time.Duration {
	if k < 1 {
		return 0
	}
	d := base
	for i := 1; i < k; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	if d > max {
		return max
	}
	return d
}

// backoff is attempt k's wait with full jitter: uniform in [0, backoffCap].
func backoff(k int, base, max time.Duration) time.Duration {
	c := backoffCap(k, base, max)
	if c <= 0 {
		return 0
	}
	if c == math.MaxInt64 { // c+1 would overflow
		return time.Duration(rand.Int64N(int64(c)))
	}
	return time.Duration(rand.Int64N(int64(c) + 1))
}
