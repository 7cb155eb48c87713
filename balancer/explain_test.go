package balancer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// entry returns PoolHealth's entry for the client at i.
func entry(b *balancer.Balancer, p *pool, i int) (balancer.ClientHealth, bool) {
	for _, ch := range b.PoolHealth() {
		if ch.PID.Equal(p.clients[i].PID()) {
			return ch, true
		}
	}
	return balancer.ClientHealth{}, false
}

// PoolHealth says why a pick skips a client (not connected, heartbeat
// failing), "" for those that compete, and Stats names the strategy whose
// figure they compete on.
func TestPoolHealthSaysWhyNotPicked(t *testing.T) {
	// Misses never add up to a reconnect: the stalled client stays stalled.
	p := newPool(t, 3, nil, actors.WithHeartbeat(actors.HeartbeatPingPong, 100*time.Millisecond), func(c *actors.Config) { c.HeartbeatMisses = 1000 })
	b := p.balancer(t)
	if s := b.Stats().Strategy; s != balancer.PeakEWMA.String() {
		t.Fatalf("Stats().Strategy %q, want %q", s, balancer.PeakEWMA)
	}
	for i := range p.clients {
		if ch, _ := entry(b, p, i); ch.NotPicked != "" || !ch.Eligible {
			t.Fatalf("healthy client %d: NotPicked %q, Eligible %v", i, ch.NotPicked, ch.Eligible)
		}
	}
	// Client 0's venue drops it and refuses it back: not connected.
	p.servers[0].RefuseHandshakes(503)
	p.servers[0].DropAll()
	// Client 1's connection goes half-open: its pings are not answered.
	conns, err := p.servers[1].WaitConns(testutil.Context(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	conns[0].Stall()
	testutil.Eventually(t, 15*time.Second, "both reasons in PoolHealth", func() bool { // generous: CI once missed 5 s under load
		c0, _ := entry(b, p, 0)
		c1, _ := entry(b, p, 1)
		return strings.HasPrefix(c0.NotPicked, "not connected (") && strings.HasPrefix(c1.NotPicked, "heartbeat failing (")
	})
	for i := range p.clients {
		ch, _ := entry(b, p, i)
		if ch.Eligible != (ch.NotPicked == "") {
			t.Fatalf("client %d: Eligible %v but NotPicked %q", i, ch.Eligible, ch.NotPicked)
		}
	}
	p.servers[0].RefuseHandshakes(0)
	testutil.Eventually(t, 5*time.Second, "client 0 back in the competition", func() bool {
		ch, _ := entry(b, p, 0)
		return ch.NotPicked == "" && ch.Eligible
	})
	h, err := balancer.New(p.sys, balancer.WithDiscovery(p.pids), balancer.WithStrategy(balancer.HealthScore))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Stop() }()
	if s := h.Stats().Strategy; s != balancer.HealthScore.String() {
		t.Fatalf("Stats().Strategy %q, want %q", s, balancer.HealthScore)
	}
}
