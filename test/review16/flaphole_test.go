package review16

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestHoleFlappingUnderTheSilenceTimeout: the link to B black-holed for
// 2.5 s, then open for 0.5 s, over and over for 15 s: each hole ends
// before the silence timeout (3 s), so B is never dropped. A's own client
// is a healthy path throughout; A makes retry-safe calls of 1 s each in a
// row. Issue 16: retry-safe calls never fail while a path is healthy;
// review 16's black hole allowed 1 or 2 while the balancer learns.
func TestHoleFlappingUnderTheSilenceTimeout(t *testing.T) {
	ps := freePorts(t, 6)
	px := newLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", ps[2]))
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1,
		Advertised: px.addr()})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			px.set(hole)
			select {
			case <-stop:
				px.set(pass)
				return
			case <-time.After(2500 * time.Millisecond):
			}
			px.set(pass)
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	var total callsReport
	for time.Since(start) < 15*time.Second {
		rep := calls(t, urlA, 5, time.Second)
		total.OK += rep.OK
		total.Failed += rep.Failed
		if len(total.Errors) < 5 {
			total.Errors = append(total.Errors, rep.Errors...)
		}
	}
	close(stop)
	wg.Wait()
	var st struct{ Silent uint64 }
	getJSON(t, urlA+"../ctl/stats", &st)
	t.Logf("%d calls, %d failed, B dropped as silent %d times", total.OK+total.Failed, total.Failed, st.Silent)
	if total.Failed > 2 {
		t.Errorf("15 s of 2.5 s holes to B (A's own client healthy): %d of %d retry-safe calls failed: %q", total.Failed, total.OK+total.Failed, total.Errors)
	}
}
