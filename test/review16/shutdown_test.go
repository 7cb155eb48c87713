package review16

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestShutdownAsTheDocsCombineIt: README's quick start defers
// sys.Shutdown(); docs/balancing.md says to leave with agent.Stop() then
// m.Shutdown(). Member.Shutdown shuts the actor system down too (its go
// doc says so), so the quick start's deferred sys.Shutdown then panics
// ("close of closed channel") on the way out of every program that
// follows both.
func TestShutdownAsTheDocsCombineIt(t *testing.T) {
	ps := freePorts(t, 2)
	raw, _ := json.Marshal(nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: []string{fmt.Sprintf("127.0.0.1:%d", ps[1])},
		ShutdownTwice: true})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(raw))
	out, err := cmd.Output()
	var line string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "READY ") {
			line = strings.TrimPrefix(l, "READY ")
		}
	}
	if err != nil || line == "" {
		t.Fatalf("the node: %v, %q", err, out)
	}
	if line != "OK" {
		t.Errorf("m.Shutdown() then sys.Shutdown(): %s", line)
	}
}
