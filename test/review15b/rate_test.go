package review15b

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/internal/testutil"
)

// binanceRec answers Binance's SUBSCRIBE/UNSUBSCRIBE, records when each
// request arrived on each connection and what each connection holds.
type binanceRec struct {
	mu    sync.Mutex
	times map[int64][]time.Time
}

func (b *binanceRec) onReq(c *pconn, r rq) bool {
	b.mu.Lock()
	b.times[c.n] = append(b.times[c.n], time.Now())
	b.mu.Unlock()
	var chs []string
	_ = json.Unmarshal(r.Params, &chs)
	c.mu.Lock()
	for _, ch := range chs {
		switch r.Method {
		case "SUBSCRIBE":
			c.sub[ch] = true
		case "UNSUBSCRIBE":
			delete(c.sub, ch)
		}
	}
	c.mu.Unlock()
	_ = c.write(`{"result":null,"id":` + string(r.ID) + `}`)
	return true
}

// maxInWindow is the most requests one connection got in any second.
func (b *binanceRec) maxInWindow() (int, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	best, at := 0, int64(0)
	for n, ts := range b.times {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		j := 0
		for i := range ts {
			for ts[i].Sub(ts[j]) >= time.Second {
				j++
			}
			if i-j+1 > best {
				best, at = i-j+1, n
			}
		}
	}
	return best, at
}

// 3,000 streams over 3 Binance clients, then a lost connection (its copies
// move, then back): at the venue no connection holds more than 1,024
// streams or gets more than 5 requests in any second.
func TestShardBinanceRateAndLimitAtVenue(t *testing.T) {
	p := newPeer(t)
	rec := &binanceRec{times: map[int64][]time.Time{}}
	p.onReq = rec.onReq
	in := &inbox{}
	f := &fpool{t: t, sys: testutil.NewSystem(t), in: in}
	pool, err := feed.New(f.sys, feed.WithDiscovery(f.discover), feed.WithVenue(binance.Venue{}), feed.WithCopies(1),
		feed.WithHandler(in.handler), feed.WithDiscoveryInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	f.pool = pool
	t.Cleanup(func() { _ = pool.Stop() })
	for i := 0; i < 3; i++ {
		c, err := actors.Connect(ctx(t), f.sys, p.url(), actors.WithVenue(binance.Venue{}), actors.WithHandler(pool.Handler()),
			actors.WithRetryDelay(20*time.Millisecond), actors.WithMaxBackoff(200*time.Millisecond),
			actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryCount(actors.RetryForever),
			actors.WithRequestTimeout(5*time.Second),
			actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		f.mu.Lock()
		f.pids = append(f.pids, c.PID())
		f.clients = append(f.clients, c)
		f.mu.Unlock()
	}
	_ = pool.Refresh(ctx(t))
	var chs []string
	for i := 0; i < 3000; i++ {
		chs = append(chs, fmt.Sprintf("s%dusdt@depth@100ms", i))
	}
	if err := pool.Subscribe(testutil.Context(t, 20*time.Second), chs...); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		for n, held := range venueHoldsPeer(p) {
			if held > binance.MaxStreams {
				t.Errorf("%s: connection %d holds %d streams", when, n, held)
			}
		}
		if m, n := rec.maxInWindow(); m > 5 {
			t.Errorf("%s: connection %d got %d requests in one second", when, n, m)
		}
	}
	check("after subscribing")
	p.all()[0].ws.CloseNow()
	time.Sleep(3 * time.Second)
	check("after a loss and the return")
	total := 0
	for _, n := range venueHoldsPeer(p) {
		total += n
	}
	if total != 3000 {
		t.Errorf("the venue holds %d streams for 3,000 channels (k = 1)", total)
	}
}

func venueHoldsPeer(p *peer) map[int64]int {
	out := map[int64]int{}
	for _, c := range p.all() {
		if c.gone.Load() {
			continue
		}
		c.mu.Lock()
		out[c.n] = len(c.sub)
		c.mu.Unlock()
	}
	return out
}
