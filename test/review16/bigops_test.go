package review16

import (
	"fmt"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster"
)

// TestManyOpsAtTheBoundKeepTheLink: RemoteOptions (batches of 8, gRPC
// messages up to 32 MiB). 24 sends at once of just under MaxWireMessage
// (3 MiB with the envelope of the JSON), through B's client: three full
// batches of the largest. All must go through, and B's client stay in
// A's table (guard: held up if it passes).
func TestManyOpsAtTheBoundKeepTheLink(t *testing.T) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 0, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}
	var rep callsReport
	// 72 MiB through one link: under -race about 5 MB/s on this machine,
	// so each send has 60 s (the guard is about the link, not its speed).
	getJSON(t, fmt.Sprintf("%s../ctl/big?n=24&size=%d&timeout_ms=60000", urlA, cluster.MaxWireMessage-200), &rep)
	if rep.Failed != 0 {
		t.Errorf("24 sends at once of just under MaxWireMessage: %d failed: %q", rep.Failed, rep.Errors)
	}
	if c := calls(t, urlA, 20, 2*time.Second); c.Failed != 0 {
		t.Errorf("small calls after: %+v", c)
	}
}
