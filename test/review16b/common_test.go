package review16b

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer/opspage"
)

// Copied from test/review16 (freeze_test.go, blackhole_test.go,
// budget_test.go).

// remoteConnected counts the connected remote clients on a node's page.
func remoteConnected(t *testing.T, url string) int {
	t.Helper()
	var p opspage.Page
	getJSON(t, url+"?format=json", &p)
	n := 0
	for _, pool := range p.Pools {
		for _, c := range pool.Clients {
			if c.Remote && c.State == "connected" {
				n++
			}
		}
	}
	return n
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// calls runs n retry-safe balanced calls on a node, each with timeout d.
func calls(t *testing.T, url string, n int, d time.Duration) callsReport {
	t.Helper()
	var rep callsReport
	getJSON(t, fmt.Sprintf("%s../ctl/calls?n=%d&timeout=%s", url, n, d), &rep)
	return rep
}

// dials draws n attempts from lim at once (n goroutines, as n clients
// redialling) and returns when each was let through.
func dials(t *testing.T, lim *ratelimit.Limiter, n int, within time.Duration) []time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var mu sync.Mutex
	var out []time.Time
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lim.Wait(ctx, ratelimit.Frame{Data: []byte("dial")}); err != nil {
				return
			}
			mu.Lock()
			out = append(out, time.Now())
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// maxInWindow is the most attempts in any interval of length w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// holderHere is a topology of one member, this actor system: its Service
// holds the windows.
func holderHere(sys *actor.ActorSystem) func() []*protocluster.Member {
	return func() []*protocluster.Member {
		return []*protocluster.Member{{Id: sys.ID, Host: "127.0.0.1", Port: 1}}
	}
}

// ownClientID is the actor id of the first client a node's page lists as
// its own.
func ownClientID(t *testing.T, page string) string {
	t.Helper()
	var p opspage.Page
	getJSON(t, page+"?format=json", &p)
	for _, c := range clientsOf(p) {
		if !c.Remote {
			return c.ID[strings.LastIndex(c.ID, "/")+1:]
		}
	}
	t.Fatalf("no client of its own on %s", page)
	return ""
}
