package review16

import (
	"fmt"
	"testing"
	"time"
)

// TestClientsConnectedBeforeTheMemberServeOthers: a user who connects the
// venues first and joins the cluster after (the README's quick start
// connects at once; docs/balancing.md's snippet does not say the order
// matters): B's client was spawned before remote started, so its PID says
// "nonhost". B's agent offers it (it treats "nonhost" as local), A's
// table shows it connected and healthy, and every operation A sends
// through it is answered "no such client on this member": the agent
// looks the client up under the PID rewritten to B's address. With no
// other path every call fails; with one, the failover hides it.
func TestClientsConnectedBeforeTheMemberServeOthers(t *testing.T) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 0, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1,
		ClientsFirst: true})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never listed B's client")
	}
	if rep := calls(t, urlA, 20, 2*time.Second); rep.Failed != 0 {
		t.Errorf("B's client, connected before B's member started, is in A's table as connected; %d of 20 calls through it failed: %q",
			rep.Failed, rep.Errors)
	}
}
