package review16

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestKilledDuringItsJoin: B is SIGKILLed at several moments of its
// start (before, during and after it registers and subscribes), over
// etcd, whose key outlives it by its lease. A must end with no state for
// the dead runs (Stats().Members 0, no remote client) and then use a B
// that starts normally (guard: held up if it passes).
func TestKilledDuringItsJoin(t *testing.T) {
	etcd := startEtcd(t)
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1, Etcd: etcd})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	bcfg := nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1, Etcd: etcd}
	raw, _ := json.Marshal(bcfg)
	for _, after := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, 900 * time.Millisecond} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), nodeEnv+"="+string(raw))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = stdin.Close()
	}
	var st agentStats
	if !waitFor(20*time.Second, func() bool {
		getJSON(t, urlA+"../ctl/stats", &st)
		return st.Members == 0 && st.RemoteClients == 0
	}) {
		t.Errorf("20 s after B's runs were killed in their start, A's agent: %+v (want no member, no remote client)", st)
	}
	startNode(t, bcfg)
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Errorf("A never used the B that started after the killed ones")
	}
	if rep := calls(t, urlA, 50, 2*time.Second); rep.Failed != 0 {
		t.Errorf("A's calls: %+v", rep)
	}
}
