package review16

import (
	"fmt"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster"
)

// TestEtcdOutageDoesNotSplitThePool: every node loses etcd (a proxy of
// the test's in front of it cuts every connection) for 10 s, past the
// lease (3 s), then etcd is back. The nodes never lost each other. After
// the outage they must use each other's clients again, and none may be
// expelled (with the docs' liveness check, an expelled node is
// restarted: an etcd outage would restart every pod).
func TestEtcdOutageDoesNotSplitThePool(t *testing.T) {
	etcd := startEtcd(t)
	px := newLinkProxy(t, etcd)
	ps := freePorts(t, 6)
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1, Etcd: px.addr()})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1, Etcd: px.addr()})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	urlB := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5])
	both := func() bool { return remoteConnected(t, urlA) == 1 && remoteConnected(t, urlB) == 1 }
	if !waitFor(30*time.Second, both) {
		t.Fatal("A and B never saw each other's client")
	}
	px.set(cut)
	time.Sleep(10 * time.Second)
	during := both()
	px.set(pass)
	back := waitFor(20*time.Second, both)
	var sa, sb cluster.Stats
	getJSON(t, urlA+"../ctl/stats", &sa)
	getJSON(t, urlB+"../ctl/stats", &sb)
	t.Logf("during the outage both in use: %v; after: %v; A %+v; B %+v", during, back, sa, sb)
	if !back || sa.ExpelledBy != "" || sb.ExpelledBy != "" {
		t.Errorf("10 s without etcd (lease 3 s), the nodes reaching each other throughout: each other's client in use 20 s after: %v; A expelled by %q, B by %q",
			back, sa.ExpelledBy, sb.ExpelledBy)
	}
}
