package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
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

// A 5 MiB answer (under the client's 16 MiB read limit, over what gRPC
// carries between members): the caller gets an error that says the call
// was executed, the link between the members survives, and B's health
// keeps reaching A.
func TestOversizedAnswerKeepsTheLink(t *testing.T) { inProcess(t, testOversizedAnswerKeepsTheLink) }

func testOversizedAnswerKeepsTheLink(t *testing.T) {
	ms := startMembers(t, 1, 1)
	a, b := ms[0], ms[1]
	big := strings.Repeat("x", 5<<20)
	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithResponder("public/get_instruments", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		return big, nil
	}))
	c := b.addClient(t, srv)
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 3, eligible: 3, remote: 2, remoteEligible: 2})
	ep, ok := a.agent.Resolve(c.PID())
	if !ok {
		t.Fatal("resolve")
	}
	_, err := ep.Call(testutil.Context(t, 5*time.Second), "public/get_instruments", nil)
	if !errors.Is(err, cluster.ErrRemote) || !strings.Contains(err.Error(), "executed") {
		t.Fatalf("oversized answer: %v, want ErrRemote saying it was executed", err)
	}
	_, err = ep.Call(testutil.Context(t, 5*time.Second), "public/get_instruments", json.RawMessage(`"`+big+`"`))
	if !errors.Is(err, actors.ErrInvalidRequest) {
		t.Fatalf("oversized request: %v, want ErrInvalidRequest", err)
	}
	b.servers[0].Close()
	testutil.Eventually(t, 10*time.Second, "B's client seen not eligible on A", func() bool {
		for _, ch := range bal.PoolHealth() {
			if ch.PID.Equal(b.clients[0].PID()) {
				return !ch.Eligible
			}
		}
		return true
	})
}

// Several large operations in flight to one member at once, each under
// MaxWireMessage, and several large answers at once: the link holds and
// every one is answered. Before, Proto.Actor's endpoint writer put them in
// one gRPC message over gRPC's 4 MiB, which cut the link: 7 of 8 failed
// and the member was lost (review16 finding 15).
func TestConcurrentLargeOperationsKeepTheLink(t *testing.T) {
	inProcess(t, testConcurrentLargeOperationsKeepTheLink)
}

func testConcurrentLargeOperationsKeepTheLink(t *testing.T) {
	ms := startMembers(t, 0, 0)
	a, b := ms[0], ms[1]
	answer := strings.Repeat("y", 2<<20)
	srv := wstest.NewServer(wstest.WithDeribit(),
		wstest.WithResponder("public/big", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) { return answer, nil }),
		wstest.WithResponder("public/echo_len", func(_ *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) { return len(p), nil }))
	b.addClient(t, srv)
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 1, eligible: 1, remote: 1, remoteEligible: 1})
	ctx := testutil.Context(t, 30*time.Second)
	param := strings.Repeat("x", 3<<19) // 1.5 MiB
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := bal.Call(ctx, "public/echo_len", []string{param}, balancer.RetrySafe())
			errs <- err
		}()
		go func() {
			defer wg.Done()
			resp, err := bal.Call(ctx, "public/big", nil, balancer.RetrySafe())
			if err == nil && len(resp) < len(answer) {
				err = fmt.Errorf("answer of %d bytes", len(resp))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Log(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of 16 large operations in flight together failed (A: %+v)", failed, a.agent.Stats())
	}
	for i := 0; i < 20; i++ {
		if _, err := bal.Call(ctx, "public/echo_len", nil); err != nil {
			t.Fatalf("a small call after them: %v", err)
		}
	}
}

// addClient connects a client of m to srv and offers it (discovery, then
// Invalidate); srv is closed with m.
func (m *member) addClient(t *testing.T, srv *wstest.Server) *actors.Client {
	t.Helper()
	m.servers = append(m.servers, srv)
	c, err := actors.Connect(testutil.Context(t, 10*time.Second), m.sys, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	m.clients = append(m.clients, c)
	m.mu.Lock()
	m.pids = append(m.pids, c.PID())
	m.mu.Unlock()
	m.agent.Invalidate()
	return c
}
