package cluster

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// B is frozen (SIGSTOP) past its etcd lease: it leaves A's topology, and
// Proto.Actor blocks a member that left for good, so once B resumes A
// would never use its clients again under its member id while B still
// sees A. A tells B (NotMember) when B pings it; B's agent says it was
// taken out (Agent.Expelled, Stats.ExpelledBy, the liveness check fails);
// B started again (a new member id) is used again. Before, B was silently
// useless until someone restarted it (review16 finding 8).
func TestFrozenNodeIsToldItWasTakenOut(t *testing.T) {
	_, cfg := etcdNodes(t)
	a := startProc(t, cfg("A", 1))
	b := startProc(t, cfg("B", 1))
	waitFor(t, "A uses B's client", func() bool { return a.pool().Remote[b.address] == 1 })

	b.signal(syscall.SIGSTOP)
	out := waitFor(t, "B leaves A's topology (its lease expires)", func() bool { return a.pool().Stats.Members == 0 })
	b.signal(syscall.SIGCONT)
	resumed := time.Now()
	waitFor(t, "B is told it was taken out", func() bool { return b.pool().Stats.ExpelledBy == a.address })
	t.Logf("B frozen: out of A's topology %v after SIGSTOP; after SIGCONT, told it was taken out in %v",
		out.Round(time.Millisecond), time.Since(resumed).Round(time.Millisecond))
	if got := a.pool().Remote[b.address]; got != 0 {
		t.Fatalf("A uses %d of the expelled B's clients", got)
	}
	if st := a.pool().Stats; st.ExpelledBy != "" {
		t.Fatalf("A says it was taken out: %+v", st)
	}
	var live struct {
		Alive  bool
		Failed []string
	}
	if code := b.getStatus("/zenws/livez", &live); code != 503 || live.Alive || len(live.Failed) != 1 {
		t.Fatalf("B's liveness after it was taken out: %d %+v, want 503 naming the cluster check", code, live)
	}

	b.kill()
	b2 := startProc(t, cfg("B2", 1))
	waitFor(t, "A uses the restarted B's client", func() bool { return a.pool().Remote[b2.address] == 1 })
	if st := b2.pool().Stats; st.ExpelledBy != "" {
		t.Fatalf("the restarted B says it was taken out: %+v", st)
	}
}

// B is killed and started again at once on the same address (a supervisor,
// a pod with a fixed port), while etcd still lists its dead run until the
// run's lease expires: A keeps using the new B's client, also when the
// dead run leaves the topology, and no retry-safe call of A's fails (A's
// own client is a healthy path throughout). Before, the agent matched
// members by address and took the dead run's departure for the new one's:
// 19,300 of 31,460 calls failed (review16 finding 10). The dead run's
// departure still resets the endpoint of the address (Proto.Actor): the
// operations in flight on it then fail at once, and B is asked again at
// once.
func TestRestartedOnTheSameAddressStaysUsed(t *testing.T) {
	v, cfg := etcdNodes(t)
	a := startProc(t, cfg("A", 1))
	bc := cfg("B", 1)
	bc.Port = freePort(t)
	b := startProc(t, bc)
	waitFor(t, "A uses B's client", func() bool { return a.pool().Remote[b.address] == 1 })
	b.kill()
	bc.Name = "B2"
	b2 := startProc(t, bc)
	if b2.address != b.address {
		t.Fatalf("B2 listens at %s, B was at %s", b2.address, b.address)
	}
	back := waitFor(t, "A uses the restarted B's client", func() bool { return a.pool().Remote[b2.address] == 1 })
	var s string
	a.get("/traffic/start?workers=2", &s)
	// The dead run's lease (3 s) expires meanwhile: it leaves the topology.
	waitFor(t, "the dead run leaves A's topology", func() bool { return a.pool().Stats.Members == 1 })
	time.Sleep(2 * time.Second)
	rep := stopLoad(t, a, v)
	if t.Failed() && os.Getenv("ZENWS_DEBUG_AGENT") != "" {
		t.Log(a.out.String())
	}
	if rep.Calls == 0 {
		t.Fatal("no call was made")
	}
	t.Logf("restarted on the same address: used again %v after its process was ready", back.Round(time.Millisecond))
}
