package review16

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/opspage"
)

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

// TestFrozenNodeComesBack: B is frozen (SIGSTOP: alive at TCP, a GC pause
// or a VM stall) for longer than the membership's timeouts, so it leaves
// A's topology; then it resumes (SIGCONT), the same process. The issue
// asks that a node cut off and healed is used again ("Partition one node
// ... and heal it"); docs/balancing.md: "a transient drop (a partition, a
// cut link) ends when it answers, and its clients are used again". It
// is not: the member that left is on remote's block list, and a resumed
// process is the same member.
func TestFrozenNodeComesBack(t *testing.T) {
	openFinding(t, 8)
	frozenComesBack(t, "")
}

// TestFrozenNodeComesBackEtcd: the same over etcd, B frozen past its
// lease (3 s).
func TestFrozenNodeComesBackEtcd(t *testing.T) {
	openFinding(t, 8)
	frozenComesBack(t, startEtcd(t))
}

func frozenComesBack(t *testing.T, etcd string) {
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
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = b.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume) // before the node's own cleanup closes its stdin (cleanups run last first)
	left := waitFor(15*time.Second, func() bool { return remoteConnected(t, urlA) == 0 })
	time.Sleep(1 * time.Second)
	resume()
	if !left {
		t.Fatal("B's client never left A's table while B was stopped")
	}
	t.Log("B's client left A's table; B resumed")
	if !waitFor(30*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Errorf("30 s after B resumed, A's table has no client of B's: a frozen and resumed node is never used again")
	}
	if !waitFor(5*time.Second, func() bool { return remoteConnected(t, urlB) == 1 }) {
		t.Errorf("B's table lost A's client after B resumed")
	}
	rep := calls(t, urlB, 20, time.Second)
	t.Logf("B, resumed, with A's client in its table: %d of %d retry-safe calls failed %q", rep.Failed, rep.OK+rep.Failed, rep.Errors)
}
