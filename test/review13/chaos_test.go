package review13

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Random Subscribe/Unsubscribe/Rotate/Reconnect/drops/refusals for 3 s,
// then a settle: the venue's newest connection has exactly the wanted set.
func TestIntentChaos(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v, actors.WithRequestTimeout(500*time.Millisecond))
	ctx := testutil.Context(t, 30*time.Second)
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for time.Now().Before(stop) {
				ch := fmt.Sprintf("x.%d", r.IntN(20))
				switch k := r.IntN(100); {
				case k < 40:
					_ = c.Subscribe(ctx, ch)
				case k < 80:
					_ = c.Unsubscribe(ctx, ch)
				case k < 85:
					rctx, cancel := context.WithTimeout(ctx, time.Second)
					_ = c.Rotate(rctx)
					cancel()
				case k < 88:
					rctx, cancel := context.WithTimeout(ctx, time.Second)
					_ = c.Reconnect(rctx)
					cancel()
				case k < 92:
					v.dropAll()
				case k < 96:
					v.setRefuse(func(s string) bool { return s == ch })
				default:
					v.setRefuse(nil)
				}
			}
		}(g)
	}
	wg.Wait()
	v.setRefuse(nil)
	want := c.Subscriptions()
	eventually(t, 10*time.Second, "converged after chaos", func() bool {
		if c.State() != actors.StateConnected {
			return false
		}
		s := v.newestSubs()
		if len(s) != len(want) {
			return false
		}
		for _, w := range want {
			if !s[w] {
				return false
			}
		}
		for _, st := range c.Health().Channels {
			if st.State != actors.ChannelActive || !st.Wanted {
				return false
			}
		}
		return !c.Health().Degraded
	})
	t.Logf("wanted %d, generation %d, rotations %d", len(want), c.Health().Generation, c.Health().Rotations)
}
