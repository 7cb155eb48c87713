package cluster_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// A has one client, B two: A's balancer sees all three (B's as remote),
// and balanced calls from A go out through B's connections too.
func TestPoolSpansMembers(t *testing.T) { inProcess(t, testPoolSpansMembers) }

func testPoolSpansMembers(t *testing.T) {
	ms := startMembers(t, 1, 2)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 3, eligible: 3, remote: 2, remoteEligible: 2})

	ctx := testutil.Context(t, 20*time.Second)
	const n = 300
	for i := 0; i < n; i++ {
		if _, err := bal.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Power of two choices over peak EWMA: B's clients, a gRPC hop away,
	// are slower, yet win every pick where both are drawn (a third).
	for _, m := range ms {
		for i, c := range m.calls {
			if c.Load() == 0 {
				t.Errorf("%s server %d answered none of %d calls", m.name, i, n)
			}
		}
	}
	if got := b.served(); got < n/5 {
		t.Errorf("B's servers answered %d of %d calls, want at least %d", got, n, n/5)
	}
	if got, want := b.agent.Stats().Served, uint64(b.served()); got != want {
		t.Errorf("B's agent ran %d operations for A, B's servers answered %d", got, want)
	}
	t.Logf("calls answered: A %d, B %d + %d", a.calls[0].Load(), b.calls[0].Load(), b.calls[1].Load())
	for _, ch := range bal.PoolHealth() {
		if ch.Remote && (ch.Health.Generation == 0 || ch.Picks == 0) {
			t.Errorf("remote client %v: health %+v, %d picks", ch.PID, ch.Health, ch.Picks)
		}
	}

	// One of B's clients, straight through its endpoint: Send, Request and
	// a JSON-RPC error as the local client gives them.
	ep, ok := a.agent.Resolve(b.clients[0].PID())
	if !ok {
		t.Fatal("A does not resolve B's client")
	}
	before := b.clients[0].Health().MessagesOut
	if err := ep.Send(ctx, []byte(`{"hello":"from A"}`)); err != nil {
		t.Fatal(err)
	}
	if after := b.clients[0].Health().MessagesOut; after != before+1 {
		t.Errorf("B's client sent %d frames for one remote Send", after-before)
	}
	resp, err := ep.Request(ctx, []byte(`{"jsonrpc":"2.0","id":"r1","method":"public/get_time"}`))
	if err != nil || !json.Valid(resp) {
		t.Fatalf("Request = %s, %v", resp, err)
	}
	_, err = ep.Call(ctx, "test/fail", map[string]int{"amount": 1})
	var rpcErr *actors.RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != 10009 || rpcErr.Message != "not_enough_funds" || string(rpcErr.Data) != `{"need":5}` {
		t.Fatalf("Call(test/fail) error = %#v, want the server's RPCError", err)
	}
	resp, err = ep.Request(ctx, []byte(`{"jsonrpc":"2.0","id":9,"method":"test/fail"}`))
	if !errors.As(err, &rpcErr) || len(resp) == 0 {
		t.Fatalf("Request(test/fail) = %s, %v; want the response and an RPCError", resp, err)
	}
	short := testutil.Context(t, 100*time.Millisecond)
	if _, err := ep.Call(short, "test/slow", nil); !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("Call past the deadline = %v, want ErrTimeout", err)
	}
	if _, err := ep.Request(ctx, []byte(`{"no id":1}`)); !errors.Is(err, actors.ErrInvalidRequest) {
		t.Fatalf("Request without id = %v, want ErrInvalidRequest", err)
	}
}

// A remote client that stops leaves the table; an endpoint still held for
// it answers ErrNotFound (nothing sent: the balancer tries another).
func TestRemoteClientStops(t *testing.T) { inProcess(t, testRemoteClientStops) }

func testRemoteClientStops(t *testing.T) {
	ms := startMembers(t, 1, 2)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 3, eligible: 3, remote: 2, remoteEligible: 2})
	ep, ok := a.agent.Resolve(b.clients[1].PID())
	if !ok {
		t.Fatal("A does not resolve B's client")
	}
	b.drop(b.clients[1].PID())
	if err := b.clients[1].Close(); err != nil {
		t.Fatal(err)
	}
	waitPool(t, bal, poolCount{all: 2, eligible: 2, remote: 1, remoteEligible: 1})
	ctx := testutil.Context(t, 5*time.Second)
	if _, err := ep.Call(ctx, "public/get_time", nil); !errors.Is(err, actors.ErrNotFound) {
		t.Fatalf("call through the stopped client = %v, want ErrNotFound", err)
	}
	for i := 0; i < 50; i++ {
		if _, err := bal.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
}

// B leaves the cluster the clean way (its agent first, then the
// cluster) in the middle of A's traffic: its clients leave A's table and
// no retry-safe call fails.
func TestMemberLeavesGracefully(t *testing.T) { inProcess(t, testMemberLeavesGracefully) }

func testMemberLeavesGracefully(t *testing.T) {
	ms := startMembers(t, 1, 2)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 3, eligible: 3, remote: 2, remoteEligible: 2})
	tr := startTraffic(t, bal, 4)
	testutil.Eventually(t, 10*time.Second, "calls through B", func() bool { return b.served() >= 50 })

	left := make(chan struct{})
	go func() { defer close(left); b.leave() }()
	waitPool(t, bal, poolCount{all: 1, eligible: 1})
	servedByB := b.served()
	tr.waitCalls(t, 200, "calls after B left")
	if got := b.served(); got != servedByB {
		t.Errorf("B answered %d calls after it left A's table", got-servedByB)
	}
	tr.check(t)
	select {
	case <-left:
	case <-time.After(15 * time.Second):
		t.Fatal("B's cluster shutdown did not return")
	}
}

// B is lost abruptly (its remote server killed, no leave; the test
// provider still lists it): A notices through the remote watch of B's
// agent, B's clients leave A's table, and no retry-safe call fails.
func TestMemberLostAbruptly(t *testing.T) { inProcess(t, testMemberLostAbruptly) }

func testMemberLostAbruptly(t *testing.T) {
	ms := startMembers(t, 1, 2)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 3, eligible: 3, remote: 2, remoteEligible: 2})
	tr := startTraffic(t, bal, 4)
	testutil.Eventually(t, 10*time.Second, "calls through B", func() bool { return b.served() >= 50 })

	b.kill()
	start := time.Now()
	waitPool(t, bal, poolCount{all: 1, eligible: 1})
	t.Logf("B's clients left A's table %v after the kill", time.Since(start).Round(time.Millisecond))
	tr.waitCalls(t, 200, "calls after B was lost")
	tr.check(t)
	if got := a.agent.Stats().RemoteClients; got != 0 {
		t.Errorf("A's agent still lists %d remote clients", got)
	}
}
