package review16

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster"
)

// TestPauseUnderTheSilenceTimeoutIsSurvived: a member paused for less
// than WithSilenceTimeout (3 s; the docs: "Lower the timeout to fail over
// sooner, at the risk of dropping a member that was only slow", so a
// pause under it is to be ridden out) over automanaged membership as the
// docs set it up (refresh 300 ms). B is stopped for 2.7 s (a VM stall, a
// long pause) and continued. Then B must be in use on A again and not
// expelled. The automanaged provider's health poll (a 2 s HTTP timeout)
// drops B from A's topology first, Proto.Actor blocks it for good, and B
// is told NotMember: its liveness check fails and the process must be
// restarted for a 2.7 s pause (at 2.2 s: 3 runs of 5).
func TestPauseUnderTheSilenceTimeoutIsSurvived(t *testing.T) {
	openFindingB(t, 11)
	pauseB(t, 2700*time.Millisecond, "")
}

// TestPauseUnderTheSilenceTimeoutIsSurvivedEtcd: the same 2.7 s pause
// over etcd (lease 3 s, under the silence timeout too): the lease was
// last renewed up to a keepalive interval before the pause, so it lapses
// during it, and B is expelled as well (2 runs of 2).
func TestPauseUnderTheSilenceTimeoutIsSurvivedEtcd(t *testing.T) {
	openFindingB(t, 11)
	pauseB(t, 2700*time.Millisecond, startEtcd(t))
}

// TestShortPauseIsSurvived: the same with 1.2 s (guard: under the
// provider's poll timeout).
func TestShortPauseIsSurvived(t *testing.T) {
	pauseB(t, 1200*time.Millisecond, "")
}

func pauseB(t *testing.T, pause time.Duration, etcd string) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1, Etcd: etcd})
	b := startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1, Etcd: etcd})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	urlB := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 && remoteConnected(t, urlB) == 1 }) {
		t.Fatal("A and B never saw each other's client")
	}
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	back := waitFor(10*time.Second, func() bool { return remoteConnected(t, urlA) == 1 && remoteConnected(t, urlB) == 1 })
	var sa, sb cluster.Stats
	getJSON(t, urlA+"../ctl/stats", &sa)
	getJSON(t, urlB+"../ctl/stats", &sb)
	if !back || sb.ExpelledBy != "" || sa.ExpelledBy != "" {
		t.Errorf("B paused %v (under the 3 s silence timeout): each other's client in use again within 10 s: %v; B expelled by %q, A by %q; A's stats %+v",
			pause, back, sb.ExpelledBy, sa.ExpelledBy, sa)
	}
}
