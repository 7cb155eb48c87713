package cluster_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
	"github.com/zenws/zenws/internal/testutil"
)

// The open items of the cluster's review (issue 16), each with its guard.

// B's agent stops and a new one starts on the same member: the Terminated
// that the first run's end sends A (about the agent's name, which every
// run shares) may reach A after the new run answered. It must not drop
// the new run's clients: A watches each run's own marker.
func TestStaleTerminatedKeepsTheNewerAgent(t *testing.T) {
	inProcess(t, testStaleTerminatedKeepsTheNewerAgent)
}

func testStaleTerminatedKeepsTheNewerAgent(t *testing.T) {
	ms := startMembers(t, 1, 1)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	full := poolCount{all: 2, eligible: 2, remote: 1, remoteEligible: 1}
	waitPool(t, bal, full)
	if err := b.agent.Stop(); err != nil {
		t.Fatal(err)
	}
	waitPool(t, bal, poolCount{all: 1, eligible: 1})
	agent, err := cluster.Start(b.c, b.discover, cluster.WithSyncInterval(200*time.Millisecond),
		cluster.WithFlushInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	b.agent = agent
	waitPool(t, bal, full)

	var changes atomic.Int64
	defer a.agent.OnChange(func() { changes.Add(1) })()
	tr := startTraffic(t, bal, 2)
	tr.waitCalls(t, 50, "calls through the new run")
	a.hearAgentEnd(b, actor.TerminatedReason_Stopped)
	a.hearAgentEnd(b, actor.TerminatedReason_NotFound)
	tr.waitCalls(t, 300, "calls after the stale Terminated")
	tr.check(t)
	if n := changes.Load(); n != 0 {
		t.Errorf("the remote table changed %d times after the stale Terminated (the new run's clients were dropped)", n)
	}
	if got := count(bal); got != full {
		t.Errorf("pool %+v, want %+v", got, full)
	}
}

// A loses its link to B (Proto.Actor's remote says B's address
// terminated) while the topology still lists B: B's clients leave A's
// table, and come back once B answers again.
func TestTransientlyLostMemberIsUsedAgain(t *testing.T) {
	inProcess(t, testTransientlyLostMemberIsUsedAgain)
}

func testTransientlyLostMemberIsUsedAgain(t *testing.T) {
	ms := startMembers(t, 1, 2)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	full := poolCount{all: 3, eligible: 3, remote: 2, remoteEligible: 2}
	waitPool(t, bal, full)
	var changes atomic.Int64
	defer a.agent.OnChange(func() { changes.Add(1) })()
	lost := time.Now()
	a.hearAgentEnd(b, actor.TerminatedReason_AddressTerminated)
	// Dropped, then used again: the dip may be too short to see in the
	// pool (an answer to A's last Subscribe, already on its way, counts
	// as B answering again), so the table's changes are counted.
	testutil.Eventually(t, 10*time.Second, "B's clients dropped and back", func() bool {
		return changes.Load() >= 2 && a.agent.Stats().RemoteClients == 2
	})
	waitPool(t, bal, full)
	t.Logf("B's clients back in A's table %v after the link loss", time.Since(lost).Round(time.Millisecond))
	tr := startTraffic(t, bal, 2)
	testutil.Eventually(t, 10*time.Second, "calls through B again", func() bool { return b.served() >= 20 })
	tr.check(t)
}

// An operation that reaches B after the caller's deadline is not run
// (the node's timeout no longer starts when the operation arrives): B
// answers ErrTimeout and its venue sees nothing.
func TestLateOperationIsNotRun(t *testing.T) { inProcess(t, testLateOperationIsNotRun) }

func testLateOperationIsNotRun(t *testing.T) {
	ms := startMembers(t, 0, 1)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 1, eligible: 1, remote: 1, remoteEligible: 1})
	agent := actor.NewPID(b.sys.Address(), cluster.AgentName)
	ask := func(deadline time.Time) *wire.OpResult {
		t.Helper()
		op := &wire.Op{ClientId: b.clients[0].PID().Id, Kind: wire.OpKind_OP_KIND_CALL, Method: "public/get_time",
			TimeoutNs: int64(5 * time.Second), DeadlineUnixNs: deadline.UnixNano()}
		res, err := a.sys.Root.RequestFuture(agent, op, 10*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(*wire.OpResult)
	}
	// sent with 5 s left, arriving when the caller's deadline has passed
	if res := ask(time.Now().Add(-time.Millisecond)); res.GetCode() != wire.ErrorCode_ERROR_CODE_TIMEOUT {
		t.Fatalf("late op: %v %q, want a timeout", res.GetCode(), res.GetMessage())
	}
	if got := b.served(); got != 0 {
		t.Fatalf("B's venue answered %d calls for an op that arrived late", got)
	}
	if res := ask(time.Now().Add(5 * time.Second)); res.GetCode() != wire.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("op in time: %v %q", res.GetCode(), res.GetMessage())
	}
	if got := b.served(); got != 1 {
		t.Fatalf("B's venue answered %d calls, want 1", got)
	}
}

// hearAgentEnd gives m's agent what Proto.Actor delivers when a watch on
// other's agent (by its name) ends for why.
func (m *member) hearAgentEnd(other *member, why actor.TerminatedReason) {
	p, _ := m.sys.ProcessRegistry.Get(m.agent.PID())
	p.SendSystemMessage(m.agent.PID(), &actor.Terminated{Who: actor.NewPID(other.sys.Address(), cluster.AgentName), Why: why})
}
