package review16

import (
	"fmt"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/opspage"
)

// twoNodes starts A (two healthy clients labelled "venue-a", the page on
// a port of its own, readiness asking 2 healthy "venue-a") and B (one
// client labelled "venue-b" with a refused channel and a dropped
// connection behind it), and waits until A's page lists B's client.
// It returns A's page URL and B's client as A's page shows it.
func twoNodes(t *testing.T) (string, opspage.Client) {
	url, _, c := twoNodesB(t)
	return url, c
}

// twoNodesB is twoNodes, and B's own page too.
func twoNodesB(t *testing.T) (string, string, opspage.Client) {
	t.Helper()
	ps := freePorts(t, 6)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "venue-a", Clients: 2,
		PagePort: ps[4], MinHealthy: 2})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "venue-b", Clients: 1, Degrade: true,
		PagePort: ps[5], MinHealthy: 1})
	url := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	deadline := time.Now().Add(20 * time.Second)
	for {
		var p opspage.Page
		getJSON(t, url+"?format=json", &p)
		for _, pool := range p.Pools {
			for _, c := range pool.Clients {
				if c.Remote && c.State == "connected" {
					return url, fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5]), c
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's page never listed B's client connected: %+v", p)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRemoteClientRowOnThePage: issue 16 part 4 says the page shows
// "every client of the pool, across nodes: node, venue label, state,
// latency, in flight, channel statuses, last error, why it is or is not
// picked". For B's client, on A's page: its label, channel statuses and
// last error are empty, and why it is not picked is wrong (finding 4).
func TestRemoteClientRowOnThePage(t *testing.T) {
	urlA, urlB, c := twoNodesB(t)
	var pb opspage.Page
	getJSON(t, urlB+"?format=json", &pb)
	var own *opspage.Client
	for _, bc := range clientsOf(pb) {
		if !bc.Remote {
			own = &bc
		}
	}
	if own == nil || own.LastError == "" || own.Channels == nil || own.Label != "venue-b" {
		t.Fatalf("B's own page does not show its client's label, last error and channels: %+v", own)
	}
	// A's row as of now (the first one seen may predate B's drop): what B
	// knows reaches A within a batch.
	for end := time.Now().Add(10 * time.Second); c.LastError == "" && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var pa opspage.Page
		getJSON(t, urlA+"?format=json", &pa)
		for _, ac := range clientsOf(pa) {
			if ac.Remote {
				c = ac
			}
		}
	}
	if c.Node == "local" || c.Node == "" {
		t.Errorf("node = %q, want B's address", c.Node)
	}
	if c.Label != "venue-b" {
		t.Errorf("label = %q, want %q (the venue label the issue says the page shows)", c.Label, "venue-b")
	}
	if c.Channels == nil {
		t.Errorf("channels = null, want B's client's channel statuses (2 wanted, 1 failed)")
	}
	if c.LastError == "" {
		t.Errorf("last_error empty; B dropped the client's connection once")
	}
}

// TestRemoteDegradedClientIsPickedAsHealthy: B's client has a channel its
// venue refused: on B it is Degraded ("picked only when nothing better is
// there", NotPicked says why). Degraded is not among what crosses the
// wire, so on A the same client competes as fully healthy: A's balancer
// sends through it as if its market data were whole, and A's readiness
// counts it healthy.
func TestRemoteDegradedClientIsPickedAsHealthy(t *testing.T) {
	_, urlB, c := twoNodesB(t)
	var pb opspage.Page
	getJSON(t, urlB+"?format=json", &pb)
	if len(pb.Pools) == 0 || len(pb.Pools[0].Clients) == 0 || pb.Pools[0].Clients[0].Remote ||
		!pb.Pools[0].Clients[0].Degraded {
		t.Fatalf("B's own page does not show its client degraded: %+v", pb)
	}
	t.Logf("on B: degraded, not_picked %q", pb.Pools[0].Clients[0].NotPicked)
	if !c.Degraded || c.NotPicked == "" {
		t.Errorf("B's client on A: degraded=%v not_picked=%q; on B it is degraded (a refused channel)", c.Degraded, c.NotPicked)
	}
}

// TestReadinessCountsOtherNodesClients: A has the 2 healthy "venue-a"
// clients its readiness asks for (WithReadiness(2, "venue-a")). B's one
// client reaches A's table under the empty label (labels do not cross
// nodes), and readiness asks every label for 2: "" is short, A is never
// ready, though nothing of A's is missing. A Kubernetes probe takes A out
// for the size of B.
func TestReadinessCountsOtherNodesClients(t *testing.T) {
	url, _ := twoNodes(t)
	var rd opspage.Readiness
	code := getJSON(t, url+"readyz", &rd)
	if code != 200 || !rd.Ready {
		t.Errorf("A's readyz: %d, short %q, labels %+v; A has its 2 healthy venue-a clients", code, rd.Short, rd.Labels)
	}
}

// TestRemoteClientDetails: the details view of B's client on A's page
// (its ID has "/" and "$"), HTML and JSON (guard: held up if it passes).
func TestRemoteClientDetails(t *testing.T) {
	url, c := twoNodes(t)
	var p opspage.Page
	if code := getJSON(t, url+"?format=json&pool=pool&client="+neturl.QueryEscape(c.ID), &p); code != 200 {
		t.Fatalf("details of %s: %d", c.ID, code)
	}
	if len(p.Pools) != 1 || len(p.Pools[0].Clients) != 1 || p.Pools[0].Clients[0].ID != c.ID || !p.Pools[0].Clients[0].Remote {
		t.Errorf("details of %s: %+v", c.ID, p)
	}
	code, body := fetch(t, url+"?pool=pool&client="+neturl.QueryEscape(c.ID))
	if code != 200 || !strings.Contains(body, c.Node) {
		t.Errorf("HTML details of %s: %d, node %s shown: %v", c.ID, code, c.Node, strings.Contains(body, c.Node))
	}
}
