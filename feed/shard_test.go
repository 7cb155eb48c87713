package feed_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	vbinance "github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// counter counts what the pool delivers, by channel.
type counter struct {
	mu   sync.Mutex
	by   map[string]int
	gaps int
}

func (c *counter) handle(in actors.Inbound) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.Kind == actors.KindGap {
		c.gaps++
		return
	}
	c.by[in.Channel]++
}

// checkServer checks what the venue holds: every stream on exactly one
// open connection, at most 1,024 on each, and no connection that sent
// more than Binance's 5 messages in any second.
func checkServer(t *testing.T, srv *wstest.Server, streams int) {
	t.Helper()
	held := map[string]int{}
	for _, c := range srv.Conns() {
		chans := c.Channels()
		if len(chans) > wstest.BinanceMaxStreams {
			t.Fatalf("connection %d holds %d streams", c.ID(), len(chans))
		}
		if n := c.MaxInSecond(); n > ratelimit.BinanceMessagesPerSecond {
			t.Fatalf("connection %d sent %d messages in one second", c.ID(), n)
		}
		for _, ch := range chans {
			held[ch]++
		}
	}
	if len(held) != streams {
		t.Fatalf("the venue holds %d streams, want %d", len(held), streams)
	}
	for ch, n := range held {
		if n != 1 {
			t.Fatalf("%s held on %d connections", ch, n)
		}
	}
}

// venueHolds reports whether the venue's conns open connections hold
// every stream once (and, even, no two connections more than one stream
// apart): read on the server, without asking the pool.
func venueHolds(srv *wstest.Server, conns, streams int, even bool) bool {
	total, lo, hi := 0, streams, 0
	seen := map[string]bool{}
	if srv.ConnCount() != conns {
		return false
	}
	for _, c := range srv.Conns() {
		chans := c.Channels()
		total += len(chans)
		lo, hi = min(lo, len(chans)), max(hi, len(chans))
		for _, ch := range chans {
			seen[ch] = true
		}
	}
	return len(seen) == streams && total == streams && (!even || hi-lo <= 1)
}

// placed reports whether every channel has one active copy on a
// connected client, none on lost, and (even) no two clients differ by more
// than one copy.
func placed(st feed.Status, streams int, lost *actor.PID, even bool) bool {
	if len(st.Channels) != streams {
		return false
	}
	for _, cs := range st.Channels {
		if cs.Copies != 1 || cs.Active != 1 || len(cs.Clients) != 1 || (lost != nil && cs.Clients[0].Equal(lost)) {
			return false
		}
	}
	if even {
		lo, hi := streams, 0
		for _, c := range st.Clients {
			lo, hi = min(lo, c.Streams), max(hi, c.Streams)
		}
		return hi-lo <= 1
	}
	return true
}

// 5,000 Binance streams over six connections of 1,024: spread within the
// limit, moved to the five others when one is lost, and back when it
// returns, never faster than Binance's 5 messages a second on any
// connection, each stream on one connection at the end.
func TestShardingOverAPool(t *testing.T) {
	const streams, clients = 5000, 6
	srv := wstest.NewServer(wstest.WithBinance())
	t.Cleanup(srv.Close)
	cnt := &counter{by: map[string]int{}}
	p, cs := newPool(t, srv, clients, vbinance.Venue{}, []feed.Option{feed.WithCopies(1), feed.WithHandler(cnt.handle)},
		actors.WithRequestTimeout(time.Minute))
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("s%04d@trade", i)
	}
	start := time.Now()
	if err := p.Subscribe(testutil.Context(t, time.Minute), names...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d streams subscribed over %d connections in %v", streams, clients, time.Since(start).Round(time.Millisecond))
	if st := status(t, p); !placed(st, streams, nil, true) {
		t.Fatalf("not spread evenly: %+v", st.Clients)
	}
	checkServer(t, srv, streams)

	// Let each connection's rate budget fill again (zenws's Binance
	// limiter: 5 messages in a sliding 1.2 s): the re-home figure is then
	// the pool's and the venue's work; right after the initial subscribe
	// it also waits up to one window for the limiter.
	time.Sleep(1500 * time.Millisecond)
	// Lose the first client's connection, and keep it away.
	lost := cs[0]
	srv.RefuseHandshakes(http.StatusServiceUnavailable)
	one := status(t, p).Clients[0].Channels[0]
	for _, c := range srv.Conns() {
		if c.Subscribed(one) {
			c.Drop()
		}
	}
	start = time.Now()
	testutil.Eventually(t, time.Minute, "re-homed on the venue", func() bool { return venueHolds(srv, clients-1, streams, false) })
	took := time.Since(start)
	testutil.Eventually(t, time.Minute, "re-homed", func() bool { return placed(status(t, p), streams, lost.PID(), false) })
	t.Logf("re-homed after a lost connection in %v as the venue sees it, %v as the pool does (%d moves)",
		took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), status(t, p).Moves)
	checkServer(t, srv, streams)

	// It comes back: the pool evens the load again, subscribing each
	// copy before it drops the old one.
	srv.RefuseHandshakes(0)
	start = time.Now()
	testutil.Eventually(t, time.Minute, "even again on the venue", func() bool { return venueHolds(srv, clients, streams, true) })
	took = time.Since(start)
	testutil.Eventually(t, time.Minute, "even again", func() bool { return placed(status(t, p), streams, nil, true) })
	t.Logf("even again after the connection returned in %v as the venue sees it, %v as the pool does (%d moves)",
		took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), status(t, p).Moves)
	checkServer(t, srv, streams)
	for _, c := range status(t, p).Clients {
		if c.Streams > vbinance.MaxStreams {
			t.Fatalf("client holds %d streams", c.Streams)
		}
	}

	// Every stream is delivered, once.
	for _, n := range names[:200] {
		srv.PublishStream(n, map[string]string{"e": "trade", "s": n})
	}
	testutil.Eventually(t, 10*time.Second, "200 events", func() bool {
		cnt.mu.Lock()
		defer cnt.mu.Unlock()
		return len(cnt.by) == 200
	})
	cnt.mu.Lock()
	defer cnt.mu.Unlock()
	for n, k := range cnt.by {
		if k != 1 {
			t.Fatalf("%s delivered %d times", n, k)
		}
	}
}
