package review16

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestDefaultReadinessIsThePodsOwn: review16's finding 5 (one node's
// trouble fails every node's readiness probe) was fixed for labels named
// in WithReadiness. opspage.New's default (n 1, no labels: "every venue
// label seen in the pools is required") still counts the other nodes'
// clients: B's one client of its venue "b" degraded (a channel refused),
// and A, whose own two clients of "a" are healthy, answers readyz 503
// short ["b"]. In Kubernetes every pod of the pool leaves the Service
// because one pod's venue refused a channel; WithLocalReadiness is the
// cure, but not the default, and the docs' probe snippet does not use it.
func TestDefaultReadinessIsThePodsOwn(t *testing.T) {
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 2, PagePort: ps[4], DefaultReadiness: true})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1, Degrade: true})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never saw B's client")
	}
	var ready map[string]any
	var code int
	waitFor(5*time.Second, func() bool {
		ready = map[string]any{}
		code = getJSON(t, urlA+"readyz", &ready)
		return code != http.StatusOK
	})
	if code != http.StatusOK {
		t.Errorf("A (its own two clients healthy), default readiness: readyz %d %v, because B's client is degraded", code, ready)
	}
}
