package review16

import (
	"fmt"
	"testing"
	"time"
)

// TestConcurrentLargeOpsKeepTheLink: docs/balancing.md, "Size": "An
// operation and its answer cross nodes only up to cluster.MaxWireMessage
// (3 MiB): Proto.Actor's gRPC transport refuses messages over 4 MiB, and
// a refusal would cut the link." The bound is per operation; Proto.Actor's
// endpoint writer batches the messages queued for a node (up to 1,000)
// into one gRPC message. A (no client of its own) sends 8 payloads of
// 1.5 MiB at once through B's client: each is under the bound, together
// they are not. Every one must go through, B's client must stay in A's
// table.
func TestConcurrentLargeOpsKeepTheLink(t *testing.T) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 0, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}
	var one callsReport
	getJSON(t, fmt.Sprintf("%s../ctl/big?n=1&size=%d", urlA, 3<<19), &one)
	if one.Failed != 0 {
		t.Fatalf("one 1.5 MiB send through B: %+v", one)
	}
	var rep callsReport
	getJSON(t, fmt.Sprintf("%s../ctl/big?n=8&size=%d", urlA, 3<<19), &rep)
	if rep.Failed != 0 {
		t.Errorf("8 sends of 1.5 MiB at once through B (each under MaxWireMessage): %d failed: %q", rep.Failed, rep.Errors)
	}
	if c := calls(t, urlA, 20, 2*time.Second); c.Failed != 0 {
		t.Errorf("small calls through B after the large ones: %+v", c)
	}
}
