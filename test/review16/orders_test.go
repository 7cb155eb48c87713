package review16

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/transport/wstest"
)

// countingVenue answers private/buy and counts each order id.
type countingVenue struct {
	*wstest.Server
	mu     sync.Mutex
	orders map[string]int
}

func newCountingVenue(t *testing.T) *countingVenue {
	v := &countingVenue{orders: map[string]int{}}
	v.Server = wstest.NewServer(wstest.WithDeribit(),
		wstest.WithResponder("public/get_time", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			return time.Now().UnixMilli(), nil
		}),
		wstest.WithResponder("private/buy", func(_ *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
			var p struct{ ID string }
			_ = json.Unmarshal(params, &p)
			time.Sleep(2 * time.Millisecond) // an order in flight long enough to be caught by a kill
			v.mu.Lock()
			v.orders[p.ID]++
			v.mu.Unlock()
			return "filled", nil
		}))
	t.Cleanup(v.Close)
	return v
}

func (v *countingVenue) count(id string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.orders[id]
}

type ordersReport struct {
	Filled []string
	Failed map[string]string
}

// TestNoOrderTwiceAcrossKills: A (one client) sends orders, not
// retry-safe, in a row through the pool of A's and B's clients (one
// venue, counting by id); B is killed (SIGKILL) twice under that load
// and started again each time on the same address (automanaged). Issue
// 16: "no order runs twice"; every order A was told filled ran exactly
// once, a failed one at most once (guard: held up if it passes).
func TestNoOrderTwiceAcrossKills(t *testing.T) {
	v := newCountingVenue(t)
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1,
		VenueURL: v.URL()})
	bcfg := nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 2, PagePort: ps[5], MinHealthy: 1,
		VenueURL: v.URL()}
	b := startNode(t, bcfg)
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 2 }) {
		t.Fatal("A never used B's clients")
	}
	var wg sync.WaitGroup
	reps := make([]ordersReport, 6)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range reps {
			getJSON(t, fmt.Sprintf("%s../ctl/orders?prefix=o%d&n=300&timeout=2s", urlA, i), &reps[i])
		}
	}()
	for k := 0; k < 2; k++ {
		time.Sleep(700 * time.Millisecond)
		_ = b.cmd.Process.Kill()
		<-b.done
		b = startNode(t, bcfg)
	}
	wg.Wait()
	filled, failed := 0, 0
	for _, rep := range reps {
		for _, id := range rep.Filled {
			filled++
			if n := v.count(id); n != 1 {
				t.Errorf("order %s filled for A, the venue saw it %d times", id, n)
			}
		}
		for id, err := range rep.Failed {
			failed++
			if n := v.count(id); n > 1 {
				t.Errorf("order %s failed for A (%s), the venue saw it %d times", id, err, n)
			}
		}
	}
	if filled == 0 {
		t.Fatal("no order filled")
	}
	t.Logf("%d orders filled, %d failed (each failed one at most once at the venue)", filled, failed)
}
