package nodews

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// Against a venue we did not write: a client whose venue refuses it is
// "not connected" in PoolHealth's NotPicked, balanced calls go through the
// other, and it competes again once back.
func TestBalancerSaysWhyNotPickedWithNodeWS(t *testing.T) {
	sys := testutil.NewSystem(t)
	var clients []*actors.Client
	for i := 0; i < 2; i++ {
		c, err := actors.Connect(ctx(t), sys, venue(t),
			actors.WithRetryDelay(50*time.Millisecond), actors.WithMaxBackoff(200*time.Millisecond), actors.WithRetryCount(1000))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		clients = append(clients, c)
	}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID {
		return []*actor.PID{clients[0].PID(), clients[1].PID()}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	of := func(i int) balancer.ClientHealth {
		for _, ch := range b.PoolHealth() {
			if ch.PID.Equal(clients[i].PID()) {
				return ch
			}
		}
		return balancer.ClientHealth{NotPicked: "not in the table"}
	}
	testutil.Eventually(t, 5*time.Second, "both clients compete", func() bool { return of(0).NotPicked == "" && of(1).NotPicked == "" })
	// The venue of client 1 drops it and refuses it back for 2 s.
	_, _ = clients[1].Call(testutil.Context(t, time.Second), "refuse", map[string]int{"ms": 2000})
	testutil.Eventually(t, 5*time.Second, "client 1 not picked: not connected", func() bool {
		return strings.HasPrefix(of(1).NotPicked, "not connected (")
	})
	if ch := of(1); ch.Eligible || ch.Health.LastError == nil {
		t.Fatalf("client 1: eligible %v, last error %v", ch.Eligible, ch.Health.LastError)
	}
	before := of(1).Picks
	for i := 0; i < 20; i++ {
		if _, err := b.Call(ctx(t), "echo", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if picks := of(1).Picks; picks != before {
		t.Fatalf("the refused client was picked %d times", picks-before)
	}
	testutil.Eventually(t, 10*time.Second, "client 1 competes again", func() bool { return of(1).NotPicked == "" && of(1).Eligible })
}

// Against a venue we did not write: CallMaxAttempts sets one call's
// attempts over the balancer's WithMaxAttempts. "drop" destroys the
// connection it arrives on, so each attempt fails with ErrDisconnected and
// a retry-safe call fails over once per extra attempt.
func TestCallMaxAttemptsWithNodeWS(t *testing.T) {
	sys := testutil.NewSystem(t)
	var pids []*actor.PID
	var clients []*actors.Client
	for i := 0; i < 2; i++ {
		c, err := actors.Connect(ctx(t), sys, venue(t),
			actors.WithRetryDelay(20*time.Millisecond), actors.WithMaxBackoff(100*time.Millisecond), actors.WithRetryCount(1000))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		pids = append(pids, c.PID())
		clients = append(clients, c)
	}
	// The dropped client back, as the client itself says: the balancer's
	// table alone may still hold it eligible from before the drop.
	reconnected := func(n uint64) func() bool {
		return func() bool {
			var sum uint64
			for _, c := range clients {
				h := c.Health()
				if h.State != actors.StateConnected {
					return false
				}
				sum += h.Reconnects
			}
			return sum >= n
		}
	}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }), balancer.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	bothEligible := func() bool {
		n := 0
		for _, ch := range b.PoolHealth() {
			if ch.Eligible {
				n++
			}
		}
		return n == 2
	}
	testutil.Eventually(t, 5*time.Second, "both clients eligible", bothEligible)
	if _, err := b.Call(ctx(t), "drop", nil, balancer.RetrySafe()); !errors.Is(err, actors.ErrDisconnected) {
		t.Fatalf("WithMaxAttempts(1): %v, want ErrDisconnected", err)
	}
	if f := b.Stats().Failovers; f != 0 {
		t.Fatalf("WithMaxAttempts(1): %d failovers", f)
	}
	testutil.Eventually(t, 10*time.Second, "the dropped client reconnected", reconnected(1))
	testutil.Eventually(t, 10*time.Second, "both clients eligible again", bothEligible)
	if _, err := b.Call(ctx(t), "drop", nil, balancer.RetrySafe(), balancer.CallMaxAttempts(2)); !errors.Is(err, actors.ErrDisconnected) {
		t.Fatalf("CallMaxAttempts(2): %v, want ErrDisconnected", err)
	}
	if f := b.Stats().Failovers; f != 1 {
		t.Fatalf("CallMaxAttempts(2): %d failovers, want 1", f)
	}
}
