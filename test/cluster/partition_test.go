package cluster

import (
	"fmt"
	"testing"
	"time"
)

// proxied is three nodes over etcd where A and B reach C only through a
// proxy of the test's own (C advertises the proxy's address), with A's
// traffic running and C serving part of it.
type proxied struct {
	v       *venue
	a, b, c *proc
	proxy   *cutProxy
	advert  string // C's address: the proxy's
}

func startProxied(t *testing.T) *proxied {
	v, cfg := etcdNodes(t)
	port := freePort(t)
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", port))
	p := &proxied{v: v, proxy: proxy, advert: proxy.addr()}
	p.a = startProc(t, cfg("A", 1))
	p.b = startProc(t, cfg("B", 1))
	cc := cfg("C", 1)
	cc.Port, cc.Advert = port, p.advert
	p.c = startProc(t, cc)
	if p.c.address != p.advert {
		t.Fatalf("C's address is %s, want the proxy's %s", p.c.address, p.advert)
	}
	waitFor(t, "A and B use C's client", func() bool { return p.uses(1) })
	var s string
	p.a.get("/traffic/start?workers=4", &s)
	p.waitServes(t, "C serves A's traffic")
	return p
}

// uses: A and B have n eligible clients of C.
func (p *proxied) uses(n int) bool {
	return p.a.pool().Remote[p.advert] == n && p.b.pool().Remote[p.advert] == n
}

func (p *proxied) waitServes(t *testing.T, what string) {
	served := p.c.pool().Stats.Served
	waitFor(t, what, func() bool { return p.c.pool().Stats.Served >= served+50 })
}

// disrupt runs break, waits for C's client to leave A's and B's tables,
// lets A's traffic run on without C for a second, runs mend and waits for
// C to be used again; it returns how long each wait took.
func (p *proxied) disrupt(t *testing.T, brk, mend func()) (left, back time.Duration) {
	brk()
	left = waitFor(t, "C's client leaves A's and B's tables", func() bool { return p.uses(0) })
	if got := p.a.pool().Stats.Members; got != 2 {
		t.Errorf("A keeps state for %d members while C is cut off, want 2 (C is still in the topology)", got)
	}
	time.Sleep(time.Second)
	mend()
	back = waitFor(t, "A and B use C's client again", func() bool { return p.uses(1) })
	p.waitServes(t, "C serves A's traffic again")
	return left, back
}

// C is reached through a proxy (it advertises the proxy's address, so A
// and B dial it there) and is partitioned from them: the proxy cuts every
// connection and each new one at once while C runs on
// and the topology (etcd) still lists it. C's client leaves A's and B's
// tables, A's retry-safe traffic never fails, and once the proxy is back
// A and B use C's client again (a member lost through a transient drop is
// asked again while it stays in the topology).
func TestPartitionedNodeHeals(t *testing.T) {
	p := startProxied(t)
	left, back := p.disrupt(t, p.proxy.Cut, p.proxy.Heal)
	t.Logf("partition: C's client left the tables %v after the cut, was back %v after the heal (the lost member's backoff: asked every 0.2 s, doubling)",
		left.Round(time.Millisecond), back.Round(time.Millisecond))
	stopLoad(t, p.a, p.v)
}

// C's link stalls (the proxy holds every byte, both ways, with the
// connections open and no reset): Proto.Actor's remote notices nothing,
// and C stays in the topology (its etcd lease is kept alive directly).
// A's and B's agents find C silent (no Pong for the silence timeout) and
// treat it as lost: C's client leaves their tables, the operations in
// flight through it fail over (no retry-safe call or send of A's fails, no
// order runs twice), and once the link flows again C is used again.
func TestStalledLinkIsDropped(t *testing.T) {
	p := startProxied(t)
	left, back := p.disrupt(t, p.proxy.Stall, p.proxy.Unstall)
	if st := p.a.pool().Stats; st.Silent < 1 {
		t.Errorf("A's agent after the stall: %+v, want C counted silent", st)
	}
	t.Logf("stalled link: C's client left the tables %v after the stall (silence timeout 3 s, pinged every 0.2 s), was back %v after the link flowed again",
		left.Round(time.Millisecond), back.Round(time.Millisecond))
	stopLoad(t, p.a, p.v)
}
