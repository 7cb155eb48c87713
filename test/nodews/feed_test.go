package nodews

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	vbinance "github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/internal/testutil"
)

// depthChecker is the pool's handler: each event once, each event's U the
// u of the one before plus one.
type depthChecker struct {
	mu                         sync.Mutex
	last                       uint64
	events, gaps, dups, broken int
	log                        []actors.Gap
	first                      uint64 // the U of the first event delivered
}

func (c *depthChecker) handle(in actors.Inbound) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.Kind == actors.KindGap {
		c.gaps++
		c.log = append(c.log, *in.Gap)
		return
	}
	var raw struct {
		Data struct {
			First uint64 `json:"U"`
			Last  uint64 `json:"u"`
		} `json:"data"`
	}
	_ = json.Unmarshal(in.Data, &raw)
	if c.first == 0 {
		c.first = raw.Data.First
	}
	switch {
	case raw.Data.Last <= c.last:
		c.dups++
	case c.last != 0 && raw.Data.First != c.last+1:
		c.broken++
	}
	c.last = max(c.last, raw.Data.Last)
	c.events++
}

// A redundant feed on two and three connections to a peer we did not
// write, which publishes a sequenced stream (Binance's diff depth, U and
// u) on all of them and kills one of them 100 times: from the first event
// delivered, every event is delivered once and in order, with no gap
// notice.
func TestRedundantFeedWithNodeWS(t *testing.T) {
	for _, clients := range []int{2, 3} {
		t.Run(map[int]string{2: "2 clients", 3: "3 clients"}[clients], func(t *testing.T) {
			url := nodeVenue(t, "seqfeed.js", "100", "50", strconv.Itoa(clients+1)) // the clients and the control connection
			sys := testutil.NewSystem(t)
			chk := &depthChecker{}
			var mu sync.Mutex
			var pids []*actor.PID
			p, err := feed.New(sys, feed.WithDiscovery(func() []*actor.PID { mu.Lock(); defer mu.Unlock(); return append([]*actor.PID(nil), pids...) }),
				feed.WithCopies(2), feed.WithVenue(vbinance.Venue{}), feed.WithHandler(chk.handle))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Stop() })
			for range clients {
				c, err := actors.Connect(ctx(t), sys, url, actors.WithVenue(vbinance.Venue{}), actors.WithSubscriber(p.PID()),
					actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryCount(actors.RetryForever),
					actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(50*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				mu.Lock()
				pids = append(pids, c.PID())
				mu.Unlock()
			}
			if err := p.Refresh(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if err := p.Subscribe(ctx(t), "btcusdt@depth@100ms"); err != nil {
				t.Fatal(err)
			}
			control, _ := connect(t, url, actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
			type venueStats struct{ Kills, Published, Last, Subscribed int }
			ask := func(method string) venueStats {
				res, err := control.Call(ctx(t), method, nil)
				var st venueStats
				if err != nil || json.Unmarshal(res, &st) != nil {
					t.Fatalf("%s: %v %s", method, err, res)
				}
				return st
			}
			testutil.Eventually(t, 2*time.Minute, "100 kills", func() bool { return ask("STATS").Kills >= 100 })
			st := ask("STOP")
			testutil.Eventually(t, 10*time.Second, "the last event delivered", func() bool {
				chk.mu.Lock()
				defer chk.mu.Unlock()
				return chk.last == uint64(st.Last)
			})
			fs, _ := p.Status(ctx(t))
			chk.mu.Lock()
			defer chk.mu.Unlock()
			t.Logf("%d kills: %d events published, %d delivered, %d duplicates dropped by the pool, %d moves; %d gaps, %d duplicates, %d out of order",
				st.Kills, st.Published, chk.events, fs.Duplicates+sumDuplicates(fs), fs.Moves, chk.gaps, chk.dups, chk.broken)
			// The feed starts with the first event that arrives on any copy
			// (a copy subscribed a moment later may bring it first); from
			// there on every event's U is the last u + 1, up to the last
			// event published.
			if chk.gaps != 0 || chk.dups != 0 || chk.broken != 0 || chk.last != uint64(st.Last) {
				t.Fatalf("%d of %d events (the first from U=%d), %d gaps (%+v), %d duplicates, %d out of order",
					chk.events, st.Published, chk.first, chk.gaps, chk.log, chk.dups, chk.broken)
			}
		})
	}
}

func sumDuplicates(st feed.Status) uint64 {
	var n uint64
	for _, c := range st.Channels {
		n += c.Duplicates
	}
	return n
}
