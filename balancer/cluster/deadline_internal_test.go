package cluster

import (
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// An operation ends at the caller's deadline, capped by its arrival plus
// the time the caller had left (a serving clock behind the caller's), and
// falls back to the agent's timeout with neither.
func TestDeadlineOf(t *testing.T) {
	arrived := time.Unix(1000, 0)
	const left = 2 * time.Second
	for _, c := range []struct {
		name     string
		deadline time.Time // the caller's, on this node's clock
		timeout  time.Duration
		want     time.Time
	}{
		{"sent 1.5 s ago, queued on the way", arrived.Add(500 * time.Millisecond), left, arrived.Add(500 * time.Millisecond)},
		{"already past on arrival", arrived.Add(-time.Millisecond), left, arrived.Add(-time.Millisecond)},
		{"this clock 10 s behind the caller's", arrived.Add(12 * time.Second), left, arrived.Add(left)},
		{"no deadline sent (an older node)", time.Time{}, left, arrived.Add(left)},
		{"neither", time.Time{}, 0, arrived.Add(DefaultRequestTimeout)},
	} {
		op := &wire.Op{TimeoutNs: int64(c.timeout)}
		if !c.deadline.IsZero() {
			op.DeadlineUnixNs = c.deadline.UnixNano()
		}
		if got := deadlineOf(op, arrived, DefaultRequestTimeout); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got.Sub(arrived), c.want.Sub(arrived))
		}
	}
}
