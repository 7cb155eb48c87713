package review16

import (
	"fmt"

	"github.com/zenws/zenws/balancer/opspage"
	"testing"
	"time"
)

// TestRestartedOnTheSameAddressStaysUsed: B is killed (SIGKILL) and
// started again at once on the same address (a supervisor, systemd, a
// pod with a fixed port; the demo does it, over automanaged). A holds no
// client of its own: B's is its only path, and a healthy one once B is
// back. Over etcd the dead B's key stays until its lease expires (3 s):
// for a while the topology lists two members at one address, and the
// agent matches members by address. When the dead one leaves, the new
// B's client must stay in A's table and A's calls must not fail.
func TestRestartedOnTheSameAddressStaysUsed(t *testing.T) {
	openFinding(t, 10)
	restartSameAddress(t, startEtcd(t))
}

// TestRestartedOnTheSameAddressStaysUsedAutomanaged: the same over
// automanaged (the demo's case; guard: held up).
func TestRestartedOnTheSameAddressStaysUsedAutomanaged(t *testing.T) {
	restartSameAddress(t, "")
}

func restartSameAddress(t *testing.T, etcd string) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 0, PagePort: ps[4], MinHealthy: 1, Etcd: etcd})
	bcfg := nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1, Etcd: etcd}
	b := startNode(t, bcfg)
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
	killed := time.Now()
	startNode(t, bcfg)
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatalf("A never used the restarted B's client (%v after the kill)", time.Since(killed).Round(time.Millisecond))
	}
	back := time.Since(killed)
	// Past the dead B's lease and the provider's polls: A's calls, all
	// through the restarted B, in a row.
	var total callsReport
	var drops []string
	for time.Since(killed) < 9*time.Second {
		if n := remoteConnected(t, urlA); n != 1 {
			drops = append(drops, fmt.Sprintf("%d clients at %v", n, time.Since(killed).Round(time.Millisecond)))
		}
		rep := calls(t, urlA, 20, 2*time.Second)
		total.OK += rep.OK
		total.Failed += rep.Failed
		if len(total.Errors) < 5 {
			total.Errors = append(total.Errors, rep.Errors...)
		}
	}
	t.Logf("the restarted B's client in A's table %v after the kill; then %d calls, %d failed", back.Round(time.Millisecond), total.OK+total.Failed, total.Failed)
	for _, u := range []string{urlA, fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5])} {
		var pg opspage.Page
		getJSON(t, u+"?format=json", &pg)
		for _, c := range clientsOf(pg) {
			t.Logf("%s: %s %s %s picks %d failures %d", u, c.ID, c.Node, c.State, c.Picks, c.Failures)
		}
	}
	if total.Failed > 0 || len(drops) > 0 {
		t.Errorf("after B came back on its address: %d of A's retry-safe calls failed %q; B's client out of A's table: %q",
			total.Failed, total.Errors, drops)
	}
}
