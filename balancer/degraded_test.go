package balancer_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// A client whose wanted channels are not all active (its venue refused
// one) is degraded in its health push: a pick takes it only when no
// healthy client is left (issue 13; before, it was picked like any other).
func TestDegradedClientIsPickedOnlyWhenNoHealthyOneIsLeft(t *testing.T) {
	p := newPool(t, 2, []wstest.Option{wstest.WithDeribit()})
	p.servers[0].Handle("public/subscribe", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		return nil, &wstest.RPCError{Code: 11050, Message: "bad_request"}
	})
	if err := p.clients[0].Subscribe(testutil.Context(t, 2*time.Second), "ticker.X"); err == nil {
		t.Fatal("the refused Subscribe returned nil")
	}
	b := p.balancer(t)
	testutil.Eventually(t, 5*time.Second, "client 0 shown degraded", func() bool {
		for _, ch := range b.PoolHealth() {
			if ch.PID.Equal(p.clients[0].PID()) {
				return ch.Eligible && ch.NotPicked == "degraded: ranked after healthy clients"
			}
		}
		return false
	})
	ctx := testutil.Context(t, 10*time.Second)
	before := p.clients[0].Health().MessagesOut
	for range 200 {
		if err := b.Send(ctx, []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Counted at the venue, by content: the degraded client's own traffic
	// (the retries of its refused channel, heartbeats) is not a pick.
	if n := countFrames(p.servers[0], `{"n":1}`); n != 0 {
		t.Fatalf("the degraded client carried %d of 200 sends while a healthy one was up", n)
	}
	// The healthy one goes away: the degraded one carries the traffic.
	p.servers[1].RefuseHandshakes(503)
	p.servers[1].DropAll()
	testutil.Eventually(t, 5*time.Second, "client 1 not connected", func() bool { return p.clients[1].State() != actors.StateConnected })
	testutil.Eventually(t, 5*time.Second, "sends through the degraded client", func() bool {
		return b.Send(ctx, []byte(`{"n":2}`)) == nil
	})
	if p.clients[0].Health().MessagesOut == before {
		t.Fatal("the degraded client was not used once it was the only one")
	}
}

// countFrames is how many frames equal to text srv received, on all its
// connections.
func countFrames(srv *wstest.Server, text string) int {
	n := 0
	for _, c := range srv.Conns() {
		for _, m := range c.Received() {
			if string(m.Data) == text {
				n++
			}
		}
	}
	return n
}

// A client whose venue reads requests and answers none (the connection
// up, heartbeats answered by WebSocket pings) costs what its failures
// took: after the first call it times out, a pick prefers the client that
// answers. Before, a failure fed nothing into the peak EWMA, so the silent
// client's cost stayed at zero and it won every draw against one that
// answers in microseconds: 9 retry-safe calls in 10 failed (review16
// finding 9).
func TestSilentClientStopsWinningPicks(t *testing.T) {
	p := newPool(t, 2, []wstest.Option{wstest.WithDeribit()})
	done := make(chan struct{})
	p.servers[1].Handle("public/get_time", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		select { // never answers while the test runs
		case <-done:
		case <-time.After(20 * time.Second):
		}
		return 0, nil
	})
	b := p.balancer(t)
	t.Cleanup(func() { close(done) }) // before the servers' Close, which waits for the handler
	failed := 0
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := b.Call(ctx, "public/get_time", nil, balancer.RetrySafe())
		cancel()
		if err != nil {
			failed++
		}
	}
	var silent balancer.ClientHealth
	for _, ch := range b.PoolHealth() {
		if ch.PID.Equal(p.clients[1].PID()) {
			silent = ch
		}
	}
	if failed > 1 || silent.Picks > 1 || silent.PeakEWMA < 100*time.Millisecond {
		t.Errorf("%d of 10 calls failed; the silent client was picked %d times, its peak EWMA %v", failed, silent.Picks, silent.PeakEWMA)
	}
}
