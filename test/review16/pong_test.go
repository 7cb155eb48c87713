package review16

import (
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/balancer/cluster"
)

// TestForgedPongsKeepABlackHoledMemberInUse: fix 9 drops a member that
// answers no Ping for SilenceTimeout. A Pong counts if its nonce lies
// between the member's last ask and now, and it is matched to the member
// by member id or by its sender's address, which the sender writes. The
// nonce is a clock reading, not a secret: a process outside the cluster
// that knows B's address sends A a Pong "from" B every 300 ms with
// nonce = now, and A keeps B's client in its table through a black hole
// to B (what the silence timeout exists for): operations picked for it
// wait out their deadlines. Without the forged Pongs, A drops B within
// about 3 s (checked first). A fix: a nonce A drew at random per Ping
// (and kept until answered) cannot be guessed.
func TestForgedPongsKeepABlackHoledMemberInUse(t *testing.T) {
	if ownProcess(t) {
		return
	}
	ps := freePorts(t, 7)
	px := newLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", ps[2]))
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1,
		Advertised: px.addr()})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	up := func() bool { return remoteConnected(t, urlA) == 1 }
	if !waitFor(20*time.Second, up) {
		t.Fatal("A never used B's client")
	}
	// Without forged Pongs: the black hole is noticed.
	px.set(hole)
	if !waitFor(10*time.Second, func() bool { return !up() }) {
		t.Fatal("a black hole to B without forged Pongs: B's client still in A's table after 10 s")
	}
	px.set(pass)
	if !waitFor(30*time.Second, up) {
		t.Fatal("B's client never back in A's table after the hole")
	}

	evil := attacker(t, ps[6])
	agentA := actor.NewPID(fmt.Sprintf("127.0.0.1:%d", ps[0]), cluster.AgentName)
	asB := actor.NewPID(px.addr(), "not-the-agent")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(300 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				evil.Root.RequestWithCustomSender(agentA, wireMessage(t, "Pong", map[string]any{"nonce": time.Now().UnixNano()}), asB)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	px.set(hole)
	defer px.set(pass)
	if !waitFor(10*time.Second, func() bool { return !up() }) {
		var st cluster.Stats
		getJSON(t, urlA+"../ctl/stats", &st)
		t.Errorf("a black hole to B, with a Pong forged as B's every 300 ms by a process outside the cluster: B's client still in A's table after 10 s (silent drops %d)", st.Silent)
	}
}
