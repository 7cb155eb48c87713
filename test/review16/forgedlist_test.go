package review16

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/balancer/cluster"
)

// TestForgedListHidesAMemberForGood: a HealthBatch is matched to a member
// by its member id or its sender's address (written by the sender), and
// the list with the highest version wins. One batch from a process
// outside the cluster, "from" B, with an empty list of version 2^64-1:
// B's client leaves A's table, and no list B sends later (versions from
// its start time in ns, counting up) is ever newer: B's clients are gone
// from A for as long as both run, while B is healthy and A's page shows
// nothing wrong with B (it lists no client). Finding 6's mechanism, with
// an effect that outlasts the attack.
func TestForgedListHidesAMemberForGood(t *testing.T) {
	if ownProcess(t) {
		return
	}
	ps := freePorts(t, 7)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 2, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 2 }) {
		t.Fatal("A never used B's clients")
	}
	evil := attacker(t, ps[6])
	agentA := actor.NewPID(fmt.Sprintf("127.0.0.1:%d", ps[0]), cluster.AgentName)
	asB := actor.NewPID(fmt.Sprintf("127.0.0.1:%d", ps[2]), "not-the-agent")
	list := wireMessage(t, "ClientList", map[string]any{"version": uint64(math.MaxUint64)})
	evil.Root.RequestWithCustomSender(agentA, wireMessage(t, "HealthBatch", map[string]any{"list": list.ProtoReflect()}), asB)
	if !waitFor(5*time.Second, func() bool { return remoteConnected(t, urlA) == 0 }) {
		t.Logf("the forged list was not applied (held up)")
		return
	}
	time.Sleep(10 * time.Second) // B's agent pushes, is pinged and resubscribed every second meanwhile
	if n := remoteConnected(t, urlA); n != 2 {
		t.Errorf("one forged empty list of version 2^64-1 \"from\" B: 10 s later A uses %d of B's 2 clients (B healthy, its pushes and resubscriptions ignored as older)", n)
	}
}
