package cluster

import (
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
