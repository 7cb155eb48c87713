package review16

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/transport/wstest"
)

// TestSilentClientKeepsWinningPicks: the root of finding 9, on one node.
// Two clients: one whose venue answers, one whose venue went silent (it
// reads requests and answers none; the connection stays up, heartbeats
// are not the question here). Ten retry-safe calls in a row, 500 ms
// each. A call that lands on the silent client first loses its whole
// deadline there, so one or two may fail; but the peak-EWMA load of a
// client that only ever times out is (0+1)*(1+errors): a timeout feeds
// no round trip, so its cost stays 0 (or decays to 0) and it beats the
// healthy client's (rtt+1)*(1+errors) on every draw. Every call goes to
// it first, and every call fails.
func TestSilentClientKeepsWinningPicks(t *testing.T) {
	sys := quietSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{}) // closed first at the end: the servers' Close waits for the silent responder
	answer := func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) { return time.Now().UnixMilli(), nil }
	silent := func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
		}
		return 0, nil
	}
	good := wstest.NewServer(wstest.WithDeribit(), wstest.WithResponder("public/get_time", answer))
	t.Cleanup(good.Close)
	mute := wstest.NewServer(wstest.WithDeribit(), wstest.WithResponder("public/get_time", silent))
	t.Cleanup(mute.Close)
	var pids []*actor.PID
	for _, u := range []string{good.URL(), mute.URL()} {
		c, err := actors.Connect(ctx, sys, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		pids = append(pids, c.PID())
	}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	t.Cleanup(func() { close(done) })
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 0; i < 10; i++ {
		cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := b.Call(cctx, "public/get_time", nil, balancer.RetrySafe())
		ccancel()
		if err != nil {
			failed++
		}
	}
	for _, ch := range b.PoolHealth() {
		t.Logf("%s: picks %d failures %d peak EWMA %v load %.0f", ch.Health.Endpoint, ch.Picks, ch.Failures, ch.PeakEWMA, ch.Load)
	}
	if failed > 2 {
		t.Errorf("%d of 10 retry-safe calls failed with a healthy client in the pool: the silent one kept winning the draw", failed)
	}
}
