package cluster

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"
)

// refusing is a venue that refuses every WebSocket handshake (503) and
// records when each attempt came.
type refusing struct {
	*httptest.Server
	mu    sync.Mutex
	times []time.Time
}

func newRefusing(t *testing.T) *refusing {
	r := &refusing{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		r.times = append(r.times, time.Now())
		r.mu.Unlock()
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(r.Close)
	return r
}

// counts returns the attempts so far, the most in any window (sliding),
// and the count of each window from the first attempt (tumbling).
func (r *refusing) counts(window time.Duration) (total, most int, each []int) {
	r.mu.Lock()
	ts := append([]time.Time(nil), r.times...)
	r.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	j := 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= window {
			j++
		}
		most = max(most, i-j+1)
		k := int(ts[i].Sub(ts[0]) / window)
		for len(each) <= k {
			each = append(each, 0)
		}
		each[k]++
	}
	return len(ts), most, each
}

// Three node processes on one IP, ten clients each, against a venue that
// refuses every handshake (so every client redials as fast as its limiter
// lets it), under a rule scaled down from Binance's 300 per 5 minutes to
// 30 per 5 s. Each node's own limiter of the rule keeps that node under
// it, yet the three together go over; drawn from the shared budget, the
// venue sees at most 30 in any 5 s.
func TestSharedDialBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("three node processes for 20 s: not with -short")
	}
	etcd := startEtcd(t)
	v := newVenue(t)
	const window, burst = 5 * time.Second, 30
	run := func(shared bool, d time.Duration) (total, most int, each []int) {
		t.Helper()
		r := newRefusing(t)
		url := "ws" + r.URL[len("http"):]
		var ps []*proc
		for _, name := range []string{"A", "B", "C"} {
			ps = append(ps, startProc(t, nodeConfig{Name: name, Provider: "etcd", Etcd: etcd, Venue: v.URL(),
				Dial: &dialConfig{Shared: shared, Key: "venue@127.0.0.1", Window: window, Burst: burst, Share: 3, Clients: 10, URL: url}}))
		}
		// The holder is the lowest member: start dialling once every node
		// sees every other (a holder that changes starts an empty window).
		waitFor(t, "every node sees the others", func() bool {
			for _, p := range ps {
				if p.pool().Stats.Members != 2 {
					return false
				}
			}
			return true
		})
		for _, p := range ps {
			var s string
			p.get("/dial/start", &s)
		}
		time.Sleep(d)
		// Counted before the nodes go: a node that leaves may hold the
		// window, and the next holder starts an empty one (documented).
		total, most, each = r.counts(window)
		for _, p := range ps {
			p.quit()
		}
		return total, most, each
	}
	total, most, each := run(false, window+time.Second)
	t.Logf("each node's own limiter (%d per %v): %d attempts, at most %d in any %v, per window %v", burst, window, total, most, window, each)
	if most <= burst {
		t.Errorf("three nodes with their own limiters stayed within %d (%d): the test shows nothing", burst, most)
	}
	total, most, each = run(true, 2*window+time.Second)
	t.Logf("shared budget: %d attempts, at most %d in any %v, per window %v", total, most, window, each)
	if most > burst {
		t.Errorf("with the shared budget the venue saw %d attempts in one %v, over the rule's %d", most, window, burst)
	}
	if total < 2*burst {
		t.Errorf("with the shared budget only %d attempts in %v (the budget should be used, not starved)", total, 2*window)
	}
}
