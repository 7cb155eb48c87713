package review16

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/opspage"
)

// fakeRemote is an endpoint of another node, as balancer.WithResolver
// lets a user give one: it pushes one health update when watched.
type fakeRemote struct {
	sys *actor.ActorSystem
	pid *actor.PID
}

func (f *fakeRemote) PID() *actor.PID                    { return f.pid }
func (f *fakeRemote) Send(context.Context, []byte) error { return actors.ErrNotConnected }
func (f *fakeRemote) UnwatchHealth(*actor.PID)           {}
func (f *fakeRemote) Call(context.Context, string, any) (json.RawMessage, error) {
	return nil, actors.ErrNotConnected
}
func (f *fakeRemote) Request(context.Context, []byte) (json.RawMessage, error) {
	return nil, actors.ErrNotConnected
}
func (f *fakeRemote) WatchHealth(router *actor.PID) {
	f.sys.Root.Send(router, &actors.HealthUpdate{Client: f.pid, Health: actors.Health{State: actors.StateConnected, Generation: 1,
		Label: `<script>alert("x")</script>` + strings.Repeat("L", 300)}})
}

// TestPageOfAHugePool: 20,000 clients (other nodes' clients, through a
// resolver) with hostile labels: the page, its JSON, a page of 1,000 and
// readyz answer, bounded, without markup from the labels (guard: held up
// if it passes).
func TestPageOfAHugePool(t *testing.T) {
	const n = 20_000
	sys := quietSystem(t)
	pids := make([]*actor.PID, n)
	eps := make(map[string]*fakeRemote, n)
	for i := range pids {
		pids[i] = actor.NewPID(fmt.Sprintf("10.0.%d.%d:7000", i/250, i%250), fmt.Sprintf("zenws-client$%d", i))
		eps[pids[i].String()] = &fakeRemote{sys: sys, pid: pids[i]}
	}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }),
		balancer.WithResolver(func(p *actor.PID) (balancer.Endpoint, bool) {
			ep, ok := eps[p.String()]
			return ep, ok
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !waitFor(60*time.Second, func() bool {
		c := 0
		for _, ch := range b.PoolHealth() {
			if ch.Eligible {
				c++
			}
		}
		return c == n
	}) {
		t.Fatal("the table never held the 20,000 clients connected")
	}
	mux := http.NewServeMux()
	mux.Handle("/zenws/", opspage.New(sys, map[string]*balancer.Balancer{"huge": b}, opspage.WithReadiness(1), opspage.WithPoolReadiness())) // the clients are other nodes'
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	for _, q := range []string{"", "?format=json", "?format=json&limit=1000", "?limit=1000&offset=99500", "readyz"} {
		start := time.Now()
		code, body := fetch(t, hs.URL+"/zenws/"+q)
		t.Logf("GET %q: %d, %d bytes, %v", q, code, len(body), time.Since(start).Round(time.Millisecond))
		if code >= 500 {
			t.Errorf("GET %q: %d", q, code)
		}
		if len(body) > 8<<20 {
			t.Errorf("GET %q: %d bytes", q, len(body))
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("GET %q: a label's markup in the answer", q)
		}
	}
}
