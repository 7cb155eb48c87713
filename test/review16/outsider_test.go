package review16

import (
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/zenws/zenws/balancer/cluster"
)

// TestOutsiderPlacesAnOrderThroughAMember: the agent serves a Subscribe
// and an Op from any sender; nothing checks that it is a member of the
// topology (nodeFor is used for batches, pongs and NotMember, never for
// serving). Proto.Actor's remote has no authentication, and neither the
// README nor docs/balancing.md says the remote port must be reachable
// only by the cluster (the README's firewall note is about the
// automanaged HTTP port). A process outside the cluster that reaches A's
// remote port subscribes (A answers with its client ids) and sends an Op:
// an order goes out on A's venue connection, which is logged in with A's
// keys. This is also the root of findings 2 and 4 (NotMember and Pong
// are believed from anyone).
func TestOutsiderPlacesAnOrderThroughAMember(t *testing.T) {
	if ownProcess(t) {
		return
	}
	venue := newCountingVenue(t)
	ps := freePorts(t, 7)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1,
		VenueURL: venue.URL()})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}

	evil := attacker(t, ps[6])
	agentA := actor.NewPID(fmt.Sprintf("127.0.0.1:%d", ps[0]), cluster.AgentName)
	var clientID string
	res, err := evil.Root.RequestFuture(agentA, wireMessage(t, "Subscribe", map[string]any{"member_id": "outsider"}), 2*time.Second).Result()
	if err != nil {
		// Not answered (held up): the id is guessable anyway (A's page).
		t.Logf("A did not answer an outsider's Subscribe: %v", err)
		clientID = ownClientID(t, urlA)
	} else {
		batch := res.(proto.Message).ProtoReflect()
		list := batch.Get(batch.Descriptor().Fields().ByName("list")).Message()
		ids := list.Get(list.Descriptor().Fields().ByName("client_ids")).List()
		if ids.Len() == 0 {
			t.Fatalf("A's answer to an outsider names no client: %v", res)
		}
		clientID = ids.Get(0).String()
		t.Errorf("A answered an outsider's Subscribe with its client ids")
	}
	op := wireMessage(t, "Op", map[string]any{
		"client_id":        clientID,
		"kind":             protoreflect.EnumNumber(2), // OP_KIND_CALL
		"method":           "private/buy",
		"data":             []byte(`{"id":"outsider-1"}`),
		"timeout_ns":       int64(5 * time.Second),
		"deadline_unix_ns": time.Now().Add(5 * time.Second).UnixNano(),
	})
	ans, err := evil.Root.RequestFuture(agentA, op, 5*time.Second).Result()
	if n := venue.count("outsider-1"); n > 0 {
		t.Errorf("a process outside the cluster placed an order through A's client %q (venue saw it %d time(s); A answered %v, %v)", clientID, n, ans, err)
	}
}
