package cluster_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// B's link to A ends (B sees A's agent AddressTerminated), A's does not:
// B drops A as a subscriber. A subscribes again on its next sync, so B's
// client does not stay eligible on A with a frozen health.
func TestHealthHealsAfterAOneSidedLinkLoss(t *testing.T) {
	inProcess(t, testHealthHealsAfterAOneSidedLinkLoss)
}

func testHealthHealsAfterAOneSidedLinkLoss(t *testing.T) {
	ms := startMembers(t, 1, 1)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 2, eligible: 2, remote: 1, remoteEligible: 1})
	p, _ := b.sys.ProcessRegistry.Get(b.agent.PID())
	if os.Getenv("NOINJECT") == "" {
		p.SendSystemMessage(b.agent.PID(), &actor.Terminated{Who: actor.NewPID(a.sys.Address(), "zenws-balancer-agent"), Why: actor.TerminatedReason_AddressTerminated})
	}
	time.Sleep(300 * time.Millisecond)
	b.servers[0].Close() // B's only client loses its venue
	testutil.Eventually(t, 5*time.Second, "B's client reconnecting", func() bool { return b.clients[0].State() != actors.StateConnected })
	time.Sleep(3 * time.Second)
	for _, ch := range bal.PoolHealth() {
		if ch.Remote && ch.Eligible {
			t.Errorf("A still shows B's client %v eligible (%v) though it is %v", ch.PID, ch.Health.State, b.clients[0].State())
		}
	}
}

// A non-retry-safe order in flight on B when B is killed: ErrDisconnected,
// not re-sent on A's own client.
func TestOrderInFlightOnAKilledMemberIsDisconnected(t *testing.T) {
	inProcess(t, testOrderInFlightOnAKilledMemberIsDisconnected)
}

func testOrderInFlightOnAKilledMemberIsDisconnected(t *testing.T) {
	ms := startMembers(t, 1, 1)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 2, eligible: 2, remote: 1, remoteEligible: 1})
	for try := 0; try < 50; try++ {
		done := make(chan error, 1)
		go func() {
			_, err := bal.Call(testutil.Context(t, 10*time.Second), "test/slow", nil)
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if b.clients[0].Health().Pending == 0 {
			<-done
			continue
		}
		b.kill()
		err := <-done
		t.Logf("order in flight on B, B killed: %v", err)
		if !errors.Is(err, actors.ErrDisconnected) {
			t.Fatalf("want ErrDisconnected, got %v (a.local out=%d)", err, a.clients[0].Health().MessagesOut)
		}
		return
	}
	t.Fatal("never went to B")
}
