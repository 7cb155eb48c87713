package review13b

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Pushes as fast as the peer can write for 2 s: the client stays
// responsive (Health, Subscribe) and keeps its connection.
func TestPushFlood(t *testing.T) {
	stop := make(chan struct{})
	pe := newPeer(t, nil)
	pe.onOpen = func(p *pconn) {
		msg := `{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1"}]}`
		for {
			select {
			case <-stop:
				return
			default:
			}
			if p.write(msg) != nil {
				return
			}
		}
	}
	var box inbox
	c, err := connect(t, pe.URL, actors.WithVenue(public(t)), actors.WithHandler(box.add),
		actors.WithHeartbeat(actors.HeartbeatText, time.Second))
	if err != nil {
		close(stop)
		t.Fatal(err)
	}
	var worst time.Duration
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		s := time.Now()
		_ = c.Health()
		if d := time.Since(s); d > worst {
			worst = d
		}
		time.Sleep(20 * time.Millisecond)
	}
	serr := c.Subscribe(testutil.Context(t, 3*time.Second), "tickers:BTC-USDT")
	h := c.Health()
	close(stop)
	t.Logf("delivered %d in 2s, dropped %d, worst Health %v, subscribe %v, conns %d, misses %d", box.cnt.Load(), h.InboundDropped, worst, serr, pe.conns.Load(), h.HeartbeatMisses)
	// Bounded, typed outcomes under a flood, not timings (the machine is
	// shared): the answer to the subscribe waits behind the pushes already
	// in the socket, so on a loaded -race run it may not make the 3 s.
	if serr != nil && !errors.Is(serr, actors.ErrTimeout) {
		t.Errorf("subscribe during a push flood: %v, want nil or a timeout (the intent kept)", serr)
	}
	if box.cnt.Load() == 0 {
		t.Error("nothing delivered during the flood")
	}
	// Not asserted: under -race on 2 cores the client reads ~6k pushes/s,
	// the "pong" waits behind the backlog and the heartbeat (rightly)
	// declares the connection dead; without -race ~120k pushes/s are read
	// and the connection is kept.
	t.Logf("connections: %d", pe.conns.Load())
}

// A venue that refuses every subscribe: retries are paced, and they spend
// OKX's hourly budget; how many in 2 s with the default backoff?
func TestRefusalRetriesSpendBudget(t *testing.T) {
	pe := newPeer(t, func(p *pconn, raw []byte, r req) bool {
		if r.Op == "subscribe" {
			_ = p.write(`{` + idField(r) + `"event":"error","code":"60018","msg":"no such channel"}`)
			return true
		}
		return false
	})
	c, err := connect(t, pe.URL, actors.WithVenue(public(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var names []string
	for i := 0; i < 20; i++ {
		names = append(names, fmt.Sprintf("tickers:BAD%d", i))
	}
	_ = c.Subscribe(ctx, names...)
	time.Sleep(3 * time.Second)
	t.Logf("subscribe requests in ~3.5s for 20 refused channels: %d", pe.subs.Load())
}
