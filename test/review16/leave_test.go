package review16

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestGracefulLeaveUnderLoad: B leaves the way the docs say (agent.Stop,
// then Member.Shutdown: its stdin closed) while A's retry-safe calls run
// over A's client and B's. docs/balancing.md: "Agent.Stop tells the
// subscribers first (Leaving): its clients leave the other tables at
// once, and operations in flight are still answered". No call of A's
// fails (guard: held up if it passes).
func TestGracefulLeaveUnderLoad(t *testing.T) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	b := startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 2, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 2 }) {
		t.Fatal("A never used B's clients")
	}
	var mu sync.Mutex
	var total callsReport
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rep := calls(t, urlA, 50, 2*time.Second)
				mu.Lock()
				total.OK += rep.OK
				total.Failed += rep.Failed
				if len(total.Errors) < 5 {
					total.Errors = append(total.Errors, rep.Errors...)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	_ = b.stdin.Close() // B leaves
	select {
	case <-b.done:
	case <-time.After(15 * time.Second):
		t.Error("B did not leave within 15 s of its stdin closing")
	}
	left := waitFor(5*time.Second, func() bool { return remoteConnected(t, urlA) == 0 })
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d calls across B's leave, %d failed", total.OK+total.Failed, total.Failed)
	if total.Failed != 0 {
		t.Errorf("%d of A's retry-safe calls failed while B left gracefully: %q", total.Failed, total.Errors)
	}
	if !left {
		t.Errorf("B's clients still in A's table 5 s after B left")
	}
}
