package review16

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestFrozenCallerRecovers: the caller's own node A is frozen (SIGSTOP)
// past the membership's timeouts, so B sees A leave and blocks it; then A
// resumes. A never saw B leave. After A resumes, its retry-safe calls
// (over its own client and B's) must not fail, and its table must tell
// the truth about B's client: either used, or gone.
func TestFrozenCallerRecovers(t *testing.T) {
	openFinding(t, 8)
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	a := startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	urlB := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 && remoteConnected(t, urlB) == 1 }) {
		t.Fatal("A and B never saw each other's client")
	}
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = a.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	left := waitFor(15*time.Second, func() bool { return remoteConnected(t, urlB) == 0 })
	time.Sleep(time.Second)
	resume()
	if !left {
		t.Fatal("A's client never left B's table while A was stopped")
	}
	time.Sleep(2 * time.Second) // A's provider and agent catch up
	rep := calls(t, urlA, 40, time.Second)
	var st agentStats
	getJSON(t, urlA+"../ctl/stats", &st)
	t.Logf("A resumed: %d of %d calls failed %q; A's agent %+v; A's table lists %d of B's clients connected; B's lists %d of A's",
		rep.Failed, rep.OK+rep.Failed, rep.Errors, st, remoteConnected(t, urlA), remoteConnected(t, urlB))
	if rep.Failed > 2 {
		t.Errorf("after A resumed, %d of its 40 retry-safe calls failed (its own client healthy)", rep.Failed)
	}
	if !waitFor(30*time.Second, func() bool { return remoteConnected(t, urlB) == 1 }) {
		t.Errorf("30 s after A resumed, B's table has no client of A's")
	}
}
