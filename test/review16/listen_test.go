package review16

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// listenAddrs lists the local addresses (hex, as /proc/net/tcp{,6} has
// them) of the sockets listening on port.
func listenAddrs(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Skipf("no %s: %v", f, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			if strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", port)) {
				out = append(out, fs[1])
			}
		}
	}
	return out
}

// TestAutomanagedListensOnLoopbackOnly: the README's demo runs "on
// 127.0.0.1", and a node's Host defaults to 127.0.0.1; the automanaged
// membership HTTP server listens on every interface ([::]), so anyone who
// reaches the host reads the cluster's topology (every member's id,
// address and kinds) from /_health. The node's remote listens where
// Host says; its membership should too, or have a setting for it.
func TestAutomanagedListensOnLoopbackOnly(t *testing.T) {
	openFinding(t, 6)
	ps := freePorts(t, 2)
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: []string{fmt.Sprintf("127.0.0.1:%d", ps[1])},
		Label: "x", Clients: 1})
	addrs := listenAddrs(t, ps[1])
	if len(addrs) == 0 {
		t.Fatalf("nothing listens on the membership port %d", ps[1])
	}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "0100007F:") && !strings.HasPrefix(a, "00000000000000000000000001000000:") {
			t.Errorf("the membership HTTP server listens on %s (not loopback) for a node on 127.0.0.1", a)
		}
	}
	for _, a := range listenAddrs(t, ps[0]) {
		if !strings.HasPrefix(a, "0100007F:") {
			t.Logf("remote listens on %s", a)
		}
	}
}
