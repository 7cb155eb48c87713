package review16

import (
	"fmt"
	"testing"
	"time"
)

// agentStats is cluster.Stats as /ctl/stats answers it.
type agentStats struct {
	Served, Refused uint64
	InFlight        int64
	RemoteClients   int
	Members         int
}

// TestDepartedMembersAreForgotten: issue 16's open item "the set of
// departed members only grows". B is killed and started again five times
// (automanaged: a new member id each time); A's agent keeps state for the
// members listed now only, so it ends at 1 (B's current run) and B's
// client is used (guard: held up if it passes).
func TestDepartedMembersAreForgotten(t *testing.T) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	bcfg := nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1}
	b := startNode(t, bcfg)
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	for k := 0; k < 5; k++ {
		if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
			t.Fatalf("run %d of B: A never used its client", k+1)
		}
		_ = b.cmd.Process.Kill()
		<-b.done
		b = startNode(t, bcfg)
	}
	var st agentStats
	ok := waitFor(20*time.Second, func() bool {
		getJSON(t, urlA+"../ctl/stats", &st)
		return st.Members == 1 && st.RemoteClients == 1
	})
	if !ok {
		t.Errorf("after 5 kills and restarts of B, A's agent: %+v (want 1 member, 1 remote client)", st)
	}
}
