package review16

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster"
)

// wireMessage makes one of the agents' wire messages by its proto name
// (package wire is internal; its types are registered in this binary).
// It reports a missing type or field with Errorf (goroutines call it).
func wireMessage(t *testing.T, name string, set map[string]any) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("zenws.balancer.cluster." + name))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return &emptypb.Empty{}
	}
	m := mt.New()
	for k, v := range set {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			t.Errorf("%s has no field %s", name, k)
			continue
		}
		m.Set(fd, protoreflect.ValueOf(v))
	}
	return m.Interface()
}

// attacker is an actor system with a remote on 127.0.0.1 that is no
// member of any cluster.
func attacker(t *testing.T, port int) *actor.ActorSystem {
	t.Helper()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", port))
	r.Start()
	t.Cleanup(func() { r.Shutdown(true); sys.Shutdown() })
	return sys
}

// TestNotMemberFromANonMemberExpels: Agent.Expelled closes, for good, on
// the first NotMember that names (by member id, or by its sender's
// address: nodeFor) a member of this node's topology. Nothing checks
// that the member named said it: the sender of a Proto.Actor remote
// envelope is whatever the sender wrote. A process that is no member,
// knowing only B's address (the topology is public at /_health), sends A
// one NotMember "from" B: A is expelled (its liveness probe fails, so
// Kubernetes restarts it; its budget goes local), while A and B are
// healthy and see each other. Sent to every node, one message apiece
// restarts the whole pool, again after every restart. A fix: before
// believing it, ask the member named (a Ping to its agent at its listed
// address) and expel only if that member answers NotMember itself.
func TestNotMemberFromANonMemberExpels(t *testing.T) {
	if ownProcess(t) {
		return
	}
	ps := freePorts(t, 7)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	urlB := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 && remoteConnected(t, urlB) == 1 }) {
		t.Fatal("A and B never saw each other's client")
	}
	if code := getJSON(t, urlA+"livez", &map[string]any{}); code != http.StatusOK {
		t.Fatalf("A's livez before: %d", code)
	}
	evil := attacker(t, ps[6])
	agentA := actor.NewPID(fmt.Sprintf("127.0.0.1:%d", ps[0]), cluster.AgentName)
	asB := actor.NewPID(fmt.Sprintf("127.0.0.1:%d", ps[2]), "not-the-agent")
	evil.Root.RequestWithCustomSender(agentA, wireMessage(t, "NotMember", nil), asB)

	var st cluster.Stats
	expelled := waitFor(5*time.Second, func() bool {
		getJSON(t, urlA+"../ctl/stats", &st)
		return st.ExpelledBy != ""
	})
	if expelled {
		code := getJSON(t, urlA+"livez", &map[string]any{})
		t.Errorf("one NotMember from a process outside the cluster, its sender written as B's address: A expelled (ExpelledBy %q, livez %d) while A and B still use each other (%d, %d remote clients connected)",
			st.ExpelledBy, code, remoteConnected(t, urlA), remoteConnected(t, urlB))
	}
}

// aloneEnv marks a process started by ownProcess.
const aloneEnv = "ZENWS_REVIEW16B_ALONE"

// ownProcess runs the calling test in a fresh process of this test binary
// (that test alone) and reports true there is nothing left to do here; in
// that process it reports false and the test runs. The tests with an
// attacker start a Proto.Actor remote in the test process: every
// remote.Start sets gRPC's global logger without a lock, so a second one
// in a process where an earlier one's goroutines ran is a data race under
// -race (Proto.Actor's, not the code under test).
func ownProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv(aloneEnv) == "1" {
		return false
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), aloneEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in its own process: %v\n%s", t.Name(), err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if l := strings.TrimSpace(line); strings.Contains(l, "_test.go:") {
			t.Log(l)
		}
	}
	return true
}
