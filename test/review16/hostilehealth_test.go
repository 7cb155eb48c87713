package review16

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/balancer/opspage"
)

// TestHostileRemoteHealthOnThePage: fix 3 carries label, endpoint, last
// error and channel counts across nodes. A health summary "from" B (the
// attacker's, as in finding 8) for B's real client with a 1 MiB label of
// markup, NUL and bidi controls, a 1 MiB last error, and 2^32-1 channels: A's
// page must stay bounded, valid, without markup (guard: held up if it
// passes; the forging itself is findings 2, 4, 6 and 8).
func TestHostileRemoteHealthOnThePage(t *testing.T) {
	if ownProcess(t) {
		return
	}
	ps := freePorts(t, 7)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 1, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}
	evil := attacker(t, ps[6])
	bAddr := fmt.Sprintf("127.0.0.1:%d", ps[2])
	clientID := ownClientID(t, fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[5])) // an outsider's Subscribe is not answered now: read it off B's page
	// Valid UTF-8 only: proto3 refuses to marshal (and to unmarshal) an
	// invalid string, so none can be sent (read: the sender replaces it).
	bad := strings.Repeat("<script>alert(1)</script>\u202e\u0000", 1<<16)
	ch := wireMessage(t, "ChannelCounts", map[string]any{"total": uint32(1<<32 - 1), "failed": uint32(1<<32 - 1)})
	hm := wireMessage(t, "ClientHealth", map[string]any{"client_id": clientID, "generation": uint64(7),
		"label": bad[:1<<20], "last_error": bad[:1<<20], "endpoint": bad[:1<<20], "channels": ch.ProtoReflect()})
	hb := wireMessage(t, "HealthBatch", nil).ProtoReflect()
	lst := hb.Mutable(hb.Descriptor().Fields().ByName("health")).List()
	lst.Append(protoreflect.ValueOfMessage(hm.ProtoReflect()))
	evil.Root.RequestWithCustomSender(actor.NewPID(fmt.Sprintf("127.0.0.1:%d", ps[0]), cluster.AgentName), hb.Interface(),
		actor.NewPID(bAddr, "not-the-agent"))
	var p opspage.Page
	if !waitFor(5*time.Second, func() bool {
		p = opspage.Page{}
		getJSON(t, urlA+"?format=json", &p)
		for _, c := range clientsOf(p) {
			if c.Remote && c.Generation == 7 {
				return true
			}
		}
		return false
	}) {
		t.Log("the forged summary was not applied")
		return
	}
	for _, c := range clientsOf(p) {
		if !c.Remote {
			continue
		}
		t.Logf("B's client on A: label %d bytes, last_error %d, endpoint %d, channels %+v", len(c.Label), len(c.LastError), len(c.Endpoint), c.Channels)
		if len(c.Label) > 1024 || len(c.LastError) > 4096 || len(c.Endpoint) > 4096 {
			t.Errorf("strings not clipped: label %d, last_error %d, endpoint %d bytes", len(c.Label), len(c.LastError), len(c.Endpoint))
		}
	}
	code, body := fetch(t, urlA)
	if code != 200 || strings.Contains(body, "<script>") || len(body) > 1<<20 {
		t.Errorf("A's HTML page: %d, %d bytes, markup: %v", code, len(body), strings.Contains(body, "<script>"))
	}
	t.Logf("A's HTML page: %d bytes; a raw U+202E (right-to-left override) in it: %v; a raw NUL: %v", len(body),
		strings.Contains(body, "\u202e"), strings.Contains(body, "\x00"))
}
