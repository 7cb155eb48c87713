package cluster

import (
	"fmt"
	"testing"
	"time"
)

// C is reached through a proxy (it advertises the proxy's address, so A
// and B dial it there) and is partitioned from them: the proxy cuts every
// connection and each new one at once while C runs on
// and the topology (etcd) still lists it. C's client leaves A's and B's
// tables, A's retry-safe traffic never fails, and once the proxy is back
// A and B use C's client again (a member lost through a transient drop is
// asked again while it stays in the topology).
func TestPartitionedNodeHeals(t *testing.T) {
	v, cfg := etcdNodes(t)
	port := freePort(t)
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", port))
	advert := proxy.addr()

	a := startProc(t, cfg("A", 1))
	b := startProc(t, cfg("B", 1))
	cc := cfg("C", 1)
	cc.Port, cc.Advert = port, advert
	c := startProc(t, cc)
	if c.address != advert {
		t.Fatalf("C's address is %s, want the proxy's %s", c.address, advert)
	}
	waitFor(t, "A and B use C's client", func() bool { return a.pool().Remote[advert] == 1 && b.pool().Remote[advert] == 1 })
	var s string
	a.get("/traffic/start?workers=2", &s)
	served := c.pool().Stats.Served
	waitFor(t, "C serves A's traffic", func() bool { return c.pool().Stats.Served >= served+50 })

	proxy.Cut()
	cut := waitFor(t, "C's client leaves A's and B's tables", func() bool {
		return a.pool().Remote[advert] == 0 && b.pool().Remote[advert] == 0
	})
	if got := a.pool().Stats.Members; got != 2 {
		t.Errorf("A keeps state for %d members during the partition, want 2 (C is still in the topology)", got)
	}
	time.Sleep(time.Second) // A's traffic runs on without C
	proxy.Heal()
	healed := time.Now()
	waitFor(t, "A and B use C's client again", func() bool { return a.pool().Remote[advert] == 1 && b.pool().Remote[advert] == 1 })
	back := time.Since(healed)
	served = c.pool().Stats.Served
	waitFor(t, "C serves A's traffic again", func() bool { return c.pool().Stats.Served >= served+50 })
	t.Logf("partition: C's client left the tables %v after the cut, was back %v after the heal (the lost member's backoff: asked every 0.2 s, doubling)",
		cut.Round(time.Millisecond), back.Round(time.Millisecond))
	stopLoad(t, a, v)
}
