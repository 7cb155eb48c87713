package review16

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster"
)

// TestExpelledMemberKeepsServingItsCalls: a member told NotMember is to
// be restarted by its liveness probe (docs: periodSeconds 10,
// failureThreshold 3: up to 30 s). Until then it still serves its own
// callers with its own healthy client. B paused 3 s (expelled, as in
// finding 11), then B makes retry-safe calls of 1 s for 10 s: none may
// fail while its own client is healthy (guard: held up if it passes).
func TestExpelledMemberKeepsServingItsCalls(t *testing.T) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	b := startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	urlB := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 && remoteConnected(t, urlB) == 1 }) {
		t.Fatal("A and B never saw each other's client")
	}
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var sb cluster.Stats
	if !waitFor(10*time.Second, func() bool {
		getJSON(t, urlB+"../ctl/stats", &sb)
		return sb.ExpelledBy != ""
	}) {
		t.Skip("B was not expelled this run")
	}
	start := time.Now()
	var total callsReport
	for time.Since(start) < 10*time.Second {
		rep := calls(t, urlB, 5, time.Second)
		total.OK += rep.OK
		total.Failed += rep.Failed
		if len(total.Errors) < 5 {
			total.Errors = append(total.Errors, rep.Errors...)
		}
	}
	t.Logf("expelled B: %d calls, %d failed; A's client on B's page connected: %d", total.OK+total.Failed, total.Failed, remoteConnected(t, urlB))
	if total.Failed > 2 {
		t.Errorf("expelled B, its own client healthy: %d of %d retry-safe calls failed in 10 s: %q", total.Failed, total.OK+total.Failed, total.Errors)
	}
}
