package cluster

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// Three nodes as OS processes over etcd, each with its own clients on
// one venue; A drives balanced calls, sends and orders.
//
//   - An order sent through B while B is stopped (SIGSTOP), past its
//     deadline when B resumes, is not run: the deadline is the caller's,
//     across nodes.
//   - B is killed (SIGKILL) under load: no retry-safe call or send fails
//     (A's own client is a healthy path throughout), no order runs twice,
//     B's clients leave A's and C's tables (the time is measured).
//   - B is started again: its clients carry A's traffic again (measured);
//     the killed B leaves the topology when its lease expires, and every
//     agent forgets it (the set of departed members does not grow).
func TestNodeKilledUnderLoad(t *testing.T) {
	v, cfg := etcdNodes(t)
	a := startProc(t, cfg("A", 1))
	b := startProc(t, cfg("B", 2))
	c := startProc(t, cfg("C", 2))
	waitFor(t, "A uses B's and C's clients", func() bool {
		p := a.pool()
		return p.Local == 1 && p.Remote[b.address] == 2 && p.Remote[c.address] == 2
	})

	// The remote hop, measured: sequential calls through A's own client,
	// then through one of B's.
	for _, workers := range []int{1, 8} {
		var local, remote benchResult
		a.get(fmt.Sprintf("/bench?via=local&n=1000&workers=%d", workers), &local)
		a.get(fmt.Sprintf("/bench?via=%s&n=1000&workers=%d", b.address, workers), &remote)
		t.Logf("%d caller(s): calls/s through A's own client %.0f, through one of B's %.0f (ratio %.2f); p50 %v -> %v, p99 %v -> %v",
			workers, local.PerSec, remote.PerSec, remote.PerSec/local.PerSec, local.P50, remote.P50, local.P99, remote.P99)
	}

	// An order's deadline holds across nodes.
	b.signal(syscall.SIGSTOP)
	var late orderResult
	a.get("/order?via="+b.address+"&id=late-1&timeout=300", &late)
	time.Sleep(500 * time.Millisecond)
	b.signal(syscall.SIGCONT)
	if !late.Timeout {
		t.Fatalf("an order through a stopped node: %+v, want a timeout", late)
	}
	var after orderResult
	a.get("/order?via="+b.address+"&id=after-1&timeout=5000", &after) // behind late-1 on the same link
	if after.Err != "" {
		t.Fatalf("order through B after it resumed: %s", after.Err)
	}
	if n := v.ordersOf("late-1"); n != 0 {
		t.Fatalf("the order that reached B after its deadline ran %d times", n)
	}

	var s string
	a.get("/traffic/start?workers=4", &s)
	served := b.pool().Stats.Served
	waitFor(t, "B serves A's traffic", func() bool { return b.pool().Stats.Served >= served+200 })
	b.kill()
	killed := time.Now()
	leftA := waitFor(t, "B's clients leave A's table", func() bool {
		p := a.pool()
		return p.Remote[b.address] == 0 && p.Stats.RemoteClients == 2
	})
	waitFor(t, "B's clients leave C's table", func() bool { return c.pool().Stats.RemoteClients == 1 })
	leftC := time.Since(killed)
	t.Logf("B killed: its clients left A's table after %v, C's after %v", leftA.Round(time.Millisecond), leftC.Round(time.Millisecond))

	b2 := startProc(t, cfg("B2", 2))
	restarted := time.Now()
	waitFor(t, "B's restarted node serves A's traffic", func() bool { return b2.pool().Stats.Served >= 50 })
	t.Logf("restarted B carries A's traffic %v after its process was ready", time.Since(restarted).Round(time.Millisecond))
	waitFor(t, "C uses the restarted B", func() bool { return c.pool().Remote[b2.address] == 2 })
	// The killed B leaves the topology when its etcd lease expires; the
	// agents forget it (they keep state only for members listed).
	waitFor(t, "A and C forget the killed B", func() bool {
		return a.pool().Stats.Members == 2 && c.pool().Stats.Members == 2
	})
	t.Logf("the killed B forgotten %v after the kill (its etcd lease expired)", time.Since(killed).Round(time.Millisecond))

	rep := stopLoad(t, a, v)
	for _, id := range rep.OrdersOK {
		if n := v.ordersOf(id); n != 1 {
			t.Errorf("order %s filled for A, the venue saw it %d times", id, n)
		}
	}
	for id, err := range rep.OrdersFailed {
		t.Logf("order %s failed (the venue saw it %d times): %s", id, v.ordersOf(id), err)
	}
}

// The same pool over Proto.Actor's automanaged provider (no server: each
// node serves its membership over HTTP and polls the others'): three
// processes find each other, A's calls leave through B's and C's
// connections, C is killed and leaves the tables, and is forgotten once
// the others' polls stop finding it.
func TestAutomanagedPool(t *testing.T) {
	if testing.Short() {
		t.Skip("three node processes: not with -short")
	}
	v := newVenue(t)
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var peers []string
	for _, p := range ports {
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", p))
	}
	cfg := func(name string, i int) nodeConfig {
		return nodeConfig{Name: name, Provider: "automanaged", AutoPort: ports[i], Peers: peers, Venue: v.URL(), Clients: 1}
	}
	a := startProc(t, cfg("A", 0))
	b := startProc(t, cfg("B", 1))
	c := startProc(t, cfg("C", 2))
	joined := waitFor(t, "A uses B's and C's clients", func() bool {
		p := a.pool()
		return p.Local == 1 && p.Remote[b.address] == 1 && p.Remote[c.address] == 1
	})
	t.Logf("automanaged: A uses B's and C's clients %v after C was ready", joined.Round(time.Millisecond))
	var s string
	a.get("/traffic/start?workers=2", &s)
	waitFor(t, "B and C serve A's traffic", func() bool { return b.pool().Stats.Served >= 50 && c.pool().Stats.Served >= 50 })
	c.kill()
	killed := time.Now()
	waitFor(t, "C's client leaves A's and B's tables", func() bool {
		return a.pool().Remote[c.address] == 0 && b.pool().Stats.RemoteClients == 1
	})
	left := time.Since(killed)
	waitFor(t, "A and B forget C", func() bool { return a.pool().Stats.Members == 1 && b.pool().Stats.Members == 1 })
	t.Logf("automanaged: C killed, its client left the tables after %v, C forgotten after %v",
		left.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	stopLoad(t, a, v)
}

// etcdNodes skips the test under -short, starts etcd and the venue, and
// returns the venue and a config for a node over them.
func etcdNodes(t *testing.T) (*venue, func(name string, clients int) nodeConfig) {
	t.Helper()
	if testing.Short() {
		t.Skip("three node processes: not with -short")
	}
	etcd := startEtcd(t)
	v := newVenue(t)
	return v, func(name string, clients int) nodeConfig {
		return nodeConfig{Name: name, Provider: "etcd", Etcd: etcd, Venue: v.URL(), Clients: clients}
	}
}

// stopLoad stops p's traffic and checks it: no retry-safe call or send
// failed, no order ran twice on the venue.
func stopLoad(t *testing.T, p *proc, v *venue) loadReport {
	t.Helper()
	var rep loadReport
	p.get("/traffic/stop", &rep)
	t.Logf("%s's traffic: %d calls, %d sends, %d orders filled, %d orders failed", p.cfg.Name, rep.Calls, rep.Sends, len(rep.OrdersOK), len(rep.OrdersFailed))
	if rep.CallsFailed > 0 || rep.SendsFailed > 0 {
		t.Errorf("%d retry-safe calls and %d sends failed; first: %s", rep.CallsFailed, rep.SendsFailed, rep.FirstErr)
	}
	if twice := v.twice(); len(twice) > 0 {
		t.Errorf("orders run more than once: %v", twice)
	}
	return rep
}
