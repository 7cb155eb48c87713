package review15b

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	dv "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/internal/testutil"
)

// bookVenue streams Deribit book changes on every channel any connection
// holds: one change id sequence per channel, the same on every connection;
// a subscribe is answered, then a snapshot at the current id.
type bookVenue struct {
	p   *peer
	smu sync.Mutex // orders snapshots and changes on every connection
	ids map[string]uint64
	// refuseAfter: a connection refuses a subscribe past this many channels
	// (0: never).
	refuseAfter int
	// silent: connections whose n is in it confirm but never send.
	silent      sync.Map
	subsPerConn sync.Map // conn n -> *atomic.Int64 (subscribe requests)
}

func newBookVenue(t *testing.T) *bookVenue {
	v := &bookVenue{p: newPeer(t), ids: map[string]uint64{}}
	v.p.onReq = v.onReq
	return v
}

func snapFrame(ch string, id uint64) string {
	return fmt.Sprintf(`{"type":"snapshot","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":%d,"bids":[["new",100.0,1.0]],"asks":[]}`, id)
}

func changeFrame(id uint64) string {
	return fmt.Sprintf(`{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL","prev_change_id":%d,"change_id":%d,"bids":[["change",100.0,%d]],"asks":[]}`, id-1, id, id)
}

func (v *bookVenue) onReq(c *pconn, r rq) bool {
	if r.Method != "public/subscribe" {
		return false
	}
	cnt, _ := v.subsPerConn.LoadOrStore(c.n, new(atomic.Int64))
	cnt.(*atomic.Int64).Add(1)
	chs := r.channels()
	v.smu.Lock()
	defer v.smu.Unlock()
	c.mu.Lock()
	if v.refuseAfter > 0 && len(c.sub)+len(chs) > v.refuseAfter {
		c.mu.Unlock()
		c.refuse(r, 10028)
		return true
	}
	for _, ch := range chs {
		c.sub[ch] = true
	}
	c.mu.Unlock()
	b, _ := json.Marshal(chs)
	c.result(r, string(b))
	if _, ok := v.silent.Load(c.n); ok {
		return true
	}
	for _, ch := range chs {
		if v.ids[ch] == 0 {
			v.ids[ch] = 1
		}
		_ = c.note(ch, snapFrame(ch, v.ids[ch]))
	}
	return true
}

// step makes the next change of every channel and sends it where held.
func (v *bookVenue) step() {
	v.smu.Lock()
	defer v.smu.Unlock()
	conns := v.p.all()
	for ch := range v.ids {
		v.ids[ch]++
		f := changeFrame(v.ids[ch])
		for _, c := range conns {
			if _, ok := v.silent.Load(c.n); ok {
				continue
			}
			if c.subscribed(ch) {
				_ = c.note(ch, f)
			}
		}
	}
}

func (v *bookVenue) run(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(every):
				v.step()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// fpool is a pool and its clients.
type fpool struct {
	t       *testing.T
	sys     *actor.ActorSystem
	pool    *feed.Pool
	mu      sync.Mutex
	pids    []*actor.PID
	clients []*actors.Client
	in      *inbox
}

func (f *fpool) discover() []*actor.PID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*actor.PID(nil), f.pids...)
}

func newFPool(t *testing.T, opts ...feed.Option) *fpool {
	f := &fpool{t: t, sys: testutil.NewSystem(t), in: &inbox{}}
	all := append([]feed.Option{feed.WithDiscovery(f.discover), feed.WithVenue(dv.Venue{}), feed.WithHandler(f.in.handler), feed.WithDiscoveryInterval(50 * time.Millisecond)}, opts...)
	p, err := feed.New(f.sys, all...)
	if err != nil {
		t.Fatal(err)
	}
	f.pool = p
	t.Cleanup(func() { _ = p.Stop() })
	return f
}

func (f *fpool) add(url string, n int) {
	for i := 0; i < n; i++ {
		opts := append(baseOpts(), actors.WithVenue(dv.Venue{}), actors.WithHandler(f.pool.Handler()))
		c, err := actors.Connect(ctx(f.t), f.sys, url, opts...)
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { _ = c.Close() })
		f.mu.Lock()
		f.pids = append(f.pids, c.PID())
		f.clients = append(f.clients, c)
		f.mu.Unlock()
	}
	if err := f.pool.Refresh(ctx(f.t)); err != nil {
		f.t.Fatal(err)
	}
}

// checkFeed plays the book consumer: per channel, after the snapshot every
// change follows the one before (prev_change_id == last), a gap notice
// resets it (the next must be a snapshot or follow), nothing twice.
func checkFeed(msgs []actors.Inbound) []string {
	type st struct {
		last   uint64
		synced bool
	}
	books := map[string]*st{}
	var bad []string
	add := func(f string, a ...any) {
		if len(bad) < 15 {
			bad = append(bad, fmt.Sprintf(f, a...))
		}
	}
	for i, m := range msgs {
		if m.Kind == actors.KindGap {
			if m.Gap != nil {
				if b := books[m.Gap.Channel]; b != nil {
					b.synced = false
				}
			}
			continue
		}
		if m.Kind != actors.KindNotification {
			continue
		}
		var n struct {
			Params struct {
				Data struct {
					Type   string `json:"type"`
					Change uint64 `json:"change_id"`
					Prev   uint64 `json:"prev_change_id"`
				} `json:"data"`
			} `json:"params"`
		}
		_ = json.Unmarshal(m.Data, &n)
		d := n.Params.Data
		b := books[m.Channel]
		if b == nil {
			b = &st{}
			books[m.Channel] = b
		}
		switch {
		case d.Type == "snapshot":
			if b.synced && d.Change <= b.last {
				add("#%d %s: snapshot %d at or before %d while in sync", i, m.Channel, d.Change, b.last)
			}
			b.last, b.synced = d.Change, true
		case !b.synced:
			// first message after a gap: it may follow (the doc: a notice only if it does not)
			if b.last != 0 && d.Change <= b.last {
				add("#%d %s: change %d at or before %d after a gap", i, m.Channel, d.Change, b.last)
			}
			b.last, b.synced = d.Change, true
		case d.Prev != b.last:
			add("#%d %s: change %d (prev %d) after %d, no gap notice", i, m.Channel, d.Change, d.Prev, b.last)
			b.last = d.Change
		default:
			b.last = d.Change
		}
	}
	return bad
}

func TestFeedOptionsRefused(t *testing.T) {
	sys := testutil.NewSystem(t)
	disc := feed.WithDiscovery(func() []*actor.PID { return nil })
	bad := map[string][]feed.Option{
		"copies 0":       {disc, feed.WithCopies(0)},
		"copies -1":      {disc, feed.WithCopies(-1)},
		"copies 9":       {disc, feed.WithCopies(9)},
		"window 0":       {disc, feed.WithWindow(0)},
		"window -1":      {disc, feed.WithWindow(-1)},
		"window max+1":   {disc, feed.WithWindow(feed.MaxWindow + 1)},
		"queue 0":        {disc, feed.WithQueue(0)},
		"queue -5":       {disc, feed.WithQueue(-5)},
		"maxstreams -1":  {disc, feed.WithMaxStreams(-1)},
		"maxchannels 0":  {disc, feed.WithMaxChannels(0)},
		"maxchannels -1": {disc, feed.WithMaxChannels(-1)},
		"no discovery":   {},
		"nil discovery":  {feed.WithDiscovery(nil)},
		"interval 0":     {disc, feed.WithDiscoveryInterval(0)},
		"interval -1":    {disc, feed.WithDiscoveryInterval(-time.Second)},
		"timeout -1":     {disc, feed.WithRequestTimeout(-time.Second)},
		"handler+sub":    {disc, feed.WithHandler(func(actors.Inbound) {}), feed.WithSubscriber(actor.NewPID("x", "y"))},
	}
	for name, opts := range bad {
		p, err := feed.New(sys, opts...)
		if err == nil {
			_ = p.Stop()
			t.Errorf("%s: accepted", name)
			continue
		}
		var ce *actors.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v is not a *actors.ConfigError", name, err)
		}
	}
}

// Discovery that repeats a client, lists nil and a PID of nothing: the
// channel is never held twice on one client, Subscribe returns, nothing
// panics.
func TestFeedDiscoveryDuplicatesNilAndGhost(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(2), feed.WithRequestTimeout(time.Second))
	f.add(v.p.url(), 1)
	ghost := actor.NewPID(f.sys.Address(), "no-such-client")
	real := f.discover()[0]
	f.mu.Lock()
	f.pids = []*actor.PID{real, real, nil, ghost, real}
	f.mu.Unlock()
	if err := f.pool.Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	err := f.pool.Subscribe(c, "book.A.100ms")
	t.Logf("Subscribe: %v", err)
	st, err := f.pool.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := st.Channel("book.A.100ms")
	seen := map[string]int{}
	for _, pid := range cs.Clients {
		if pid == nil {
			t.Error("a copy on a nil client")
			continue
		}
		seen[pid.String()]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("channel held %d times on %s", n, k)
		}
	}
	if n := p1subs(v); n > 1 {
		t.Errorf("the one connection got %d subscribes of the channel", n)
	}
	t.Logf("status: %+v clients %d", cs, len(st.Clients))
}

func p1subs(v *bookVenue) int64 {
	x, ok := v.subsPerConn.Load(int64(1))
	if !ok {
		return 0
	}
	return x.(*atomic.Int64).Load()
}

// k larger than the pool: held on every client, under-replicated, and a
// client that joins gets the missing copy.
func TestFeedMoreCopiesThanClients(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(3))
	f.add(v.p.url(), 2)
	if err := f.pool.Subscribe(ctx(t), "book.A.100ms"); err != nil {
		t.Fatal(err)
	}
	st, _ := f.pool.Status(ctx(t))
	cs, _ := st.Channel("book.A.100ms")
	if !cs.UnderReplicated || cs.Copies != 2 {
		t.Errorf("3 copies over 2 clients: %+v", cs)
	}
	f.add(v.p.url(), 1)
	testutil.Eventually(t, 3*time.Second, "third copy", func() bool {
		st, _ := f.pool.Status(ctx(t))
		cs, _ := st.Channel("book.A.100ms")
		return cs.Copies == 3 && !cs.UnderReplicated
	})
}

// Every connection lost at once while the venue moves on: on the consumer's
// side, no duplicate, no change out of order, and a gap notice wherever the
// stream does not follow.
func TestFeedBothCopiesLostAtOnce(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(2))
	f.add(v.p.url(), 2)
	chs := []string{"book.A.100ms", "book.B.100ms"}
	if err := f.pool.Subscribe(ctx(t), chs...); err != nil {
		t.Fatal(err)
	}
	stop := v.run(time.Millisecond)
	for i := 0; i < 8; i++ {
		time.Sleep(100 * time.Millisecond)
		v.p.dropAll()
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	time.Sleep(200 * time.Millisecond)
	msgs := f.in.snapshot()
	if bad := checkFeed(msgs); len(bad) > 0 {
		t.Errorf("consumer sees:\n%s", strings.Join(bad, "\n"))
	}
	st, _ := f.pool.Status(ctx(t))
	gaps := f.in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap })
	var chGaps uint64
	for _, cs := range st.Channels {
		chGaps += cs.Gaps
	}
	if uint64(gaps) != st.Gaps || uint64(gaps) != chGaps {
		t.Errorf("Status.Gaps %d, sum of ChannelStatus.Gaps %d, gap notices delivered %d", st.Gaps, chGaps, gaps)
	}
	t.Logf("%d messages, %d gaps, %d duplicates; status delivered %d gaps %d", len(msgs), gaps, st.Duplicates, st.Delivered, st.Gaps)
	notes := f.in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindNotification })
	if uint64(notes) != st.Delivered {
		t.Errorf("Status.Delivered %d, updates delivered %d", st.Delivered, notes)
	}
	for _, m := range msgs {
		if m.Kind == actors.KindGap {
			t.Logf("gap %+v client %v", *m.Gap, m.Client)
			break
		}
	}
}

// One connection replays the same old snapshot and changes over and over;
// the other is honest: nothing old is delivered, nothing twice.
func TestFeedCopyReplaysOldForever(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(2))
	f.add(v.p.url(), 2)
	ch := "book.A.100ms"
	if err := f.pool.Subscribe(ctx(t), ch); err != nil {
		t.Fatal(err)
	}
	stop := v.run(time.Millisecond)
	defer stop()
	time.Sleep(100 * time.Millisecond)
	liar := v.p.all()[1]
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := 0; ; r++ {
			select {
			case <-done:
				return
			default:
			}
			_ = liar.note(ch, snapFrame(ch, 5))
			for id := uint64(6); id < 40; id++ {
				_ = liar.note(ch, changeFrame(id))
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	close(done)
	wg.Wait()
	stop()
	time.Sleep(100 * time.Millisecond)
	if bad := checkFeed(f.in.snapshot()); len(bad) > 0 {
		t.Errorf("consumer sees:\n%s", strings.Join(bad, "\n"))
	}
}

// A slow handler behind a small queue: drops are counted and Seq jumps, and
// the counters add up.
func TestFeedSlowHandlerDropsCounted(t *testing.T) {
	v := newBookVenue(t)
	var handled atomic.Int64
	var seqJump atomic.Bool
	var last uint64
	f := &fpool{t: t, sys: testutil.NewSystem(t), in: &inbox{}}
	p, err := feed.New(f.sys, feed.WithDiscovery(f.discover), feed.WithVenue(dv.Venue{}), feed.WithCopies(1), feed.WithQueue(4),
		feed.WithHandler(func(in actors.Inbound) {
			if last != 0 && in.Seq != last+1 {
				seqJump.Store(true)
			}
			last = in.Seq
			handled.Add(1)
			time.Sleep(2 * time.Millisecond)
		}))
	if err != nil {
		t.Fatal(err)
	}
	f.pool = p
	t.Cleanup(func() { _ = p.Stop() })
	f.add(v.p.url(), 1)
	if err := p.Subscribe(ctx(t), "book.A.100ms"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		v.step()
	}
	time.Sleep(1500 * time.Millisecond)
	st, _ := p.Status(ctx(t))
	t.Logf("delivered %d dropped %d handled %d", st.Delivered, st.Dropped, handled.Load())
	if st.Dropped == 0 {
		t.Error("a queue of 4 and a slow handler: nothing dropped?")
	}
	if !seqJump.Load() && st.Dropped > 0 {
		t.Error("drops but Inbound.Seq never jumps")
	}
	if uint64(handled.Load())+st.Dropped < st.Delivered {
		t.Errorf("handled %d + dropped %d < delivered %d", handled.Load(), st.Dropped, st.Delivered)
	}
}

// A handler that panics on every update: recovered, the feed goes on.
func TestFeedHandlerPanics(t *testing.T) {
	v := newBookVenue(t)
	var calls atomic.Int64
	f := &fpool{t: t, sys: testutil.NewSystem(t), in: &inbox{}}
	p, err := feed.New(f.sys, feed.WithDiscovery(f.discover), feed.WithVenue(dv.Venue{}), feed.WithCopies(1),
		feed.WithHandler(func(in actors.Inbound) { calls.Add(1); panic("handler") }))
	if err != nil {
		t.Fatal(err)
	}
	f.pool = p
	t.Cleanup(func() { _ = p.Stop() })
	f.add(v.p.url(), 1)
	if err := p.Subscribe(ctx(t), "book.A.100ms"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		v.step()
	}
	testutil.Eventually(t, 3*time.Second, "51 calls", func() bool { return calls.Load() >= 51 })
	if _, err := p.Status(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

// Clients leaving and joining discovery 300 times: the pool settles with
// each channel on k distinct clients, the venue holds it on each, Status
// agrees with the venue.
func TestFeedChurn(t *testing.T) {
	openFinding(t, 2)
	for _, n := range []int{30, 30, 30, 300} {
		if t.Failed() {
			break
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) { churn(t, n) })
	}
}

func churn(t *testing.T, rounds int) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(2))
	f.add(v.p.url(), 3)
	all := f.discover()
	chs := []string{"book.A.100ms", "book.B.100ms", "book.C.100ms"}
	if err := f.pool.Subscribe(ctx(t), chs...); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rounds; i++ {
		f.mu.Lock()
		switch i % 3 {
		case 0:
			f.pids = all[:1]
		case 1:
			f.pids = nil
		default:
			f.pids = all
		}
		f.mu.Unlock()
		_ = f.pool.Refresh(ctx(t))
	}
	f.mu.Lock()
	f.pids = all
	f.mu.Unlock()
	_ = f.pool.Refresh(ctx(t))
	testutil.Eventually(t, 10*time.Second, "settled", func() bool {
		st, err := f.pool.Status(ctx(t))
		if err != nil {
			return false
		}
		for _, ch := range chs {
			cs, _ := st.Channel(ch)
			if cs.Copies != 2 || cs.Active != 2 || len(cs.Clients) != 2 {
				return false
			}
		}
		return true
	})
	// The venue's view: each channel on exactly 2 live connections.
	time.Sleep(2 * time.Second)
	for i, c := range f.clients {
		t.Logf("client %d %v: %v", i, c.PID().Id, c.Subscriptions())
	}
	for _, ch := range chs {
		n := 0
		for _, c := range v.p.all() {
			if c.subscribed(ch) {
				n++
			}
		}
		if n != 2 {
			st, _ := f.pool.Status(ctx(t))
			cs, _ := st.Channel(ch)
			t.Errorf("%s: on %d connections at the venue; the pool says %+v", ch, n, cs)
		}
	}
}

// Odd channel names: empty, 1 MiB, and more channels than WithMaxChannels.
func TestFeedOddChannels(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(1), feed.WithMaxChannels(10), feed.WithRequestTimeout(2*time.Second))
	f.add(v.p.url(), 1)
	c, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := f.pool.Subscribe(c, ""); err == nil {
		t.Error(`Subscribe("") accepted`)
	}
	big := "book." + strings.Repeat("x", 1<<20)
	c2, cancel2 := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel2()
	err := f.pool.Subscribe(c2, big)
	t.Logf("1 MiB channel: %v", trunc(err))
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("Subscribe of a 1 MiB channel hangs until ctx ends")
	}
	var many []string
	for i := 0; i < 100000; i++ {
		many = append(many, fmt.Sprintf("book.M%d.100ms", i))
	}
	c3, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	err = f.pool.Subscribe(c3, many...)
	var ce *feed.CapacityError
	if !errors.As(err, &ce) {
		t.Fatalf("100,000 channels over WithMaxChannels(10): %v", trunc(err))
	}
	st, _ := f.pool.Status(ctx(t))
	if len(st.Channels) > 10 {
		t.Errorf("pool holds %d channels, max 10", len(st.Channels))
	}
	if len(ce.NotPlaced) < 100000-10 {
		t.Errorf("NotPlaced %d", len(ce.NotPlaced))
	}
}

func trunc(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Stop twice, Stop concurrent with Subscribe, everything after Stop (a race:
// up to 4 rounds, stopping at the first that fails).
func TestFeedStopTwiceAndAfter(t *testing.T) {
	openFinding(t, 3)
	for i := 0; i < 4 && !t.Failed(); i++ {
		t.Run(fmt.Sprint(i), stopTwiceAndAfter)
	}
}

func stopTwiceAndAfter(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t)
	f.add(v.p.url(), 2)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_ = f.pool.Subscribe(ctx(t), fmt.Sprintf("book.S%d.100ms", i))
		}(i)
	}
	time.Sleep(5 * time.Millisecond)
	if err := f.pool.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	wg.Wait()
	if err := f.pool.Stop(); !errors.Is(err, feed.ErrStopped) {
		t.Errorf("second Stop: %v", err)
	}
	if err := f.pool.Subscribe(ctx(t), "book.Z.100ms"); !errors.Is(err, feed.ErrStopped) {
		t.Errorf("Subscribe after Stop: %v", err)
	}
	if _, err := f.pool.Status(ctx(t)); !errors.Is(err, feed.ErrStopped) {
		t.Errorf("Status after Stop: %v", err)
	}
	if err := f.pool.Refresh(ctx(t)); !errors.Is(err, feed.ErrStopped) {
		t.Errorf("Refresh after Stop: %v", err)
	}
	// Stop unsubscribed on the clients: the venue holds nothing, the
	// clients want nothing.
	time.Sleep(time.Second)
	for i, c := range f.clients {
		if subs := c.Subscriptions(); len(subs) != 0 {
			t.Errorf("client %d still wants %d channels after the pool's Stop: %v", i, len(subs), subs)
		}
	}
	for _, c := range v.p.all() {
		c.mu.Lock()
		n := len(c.sub)
		c.mu.Unlock()
		if n != 0 {
			t.Errorf("connection %d still holds %d channels after Stop", c.n, n)
		}
	}
}

// Stop while the venue never answers a subscribe: Stop is bounded.
func TestFeedStopWhileVenueHangs(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(1))
	f.add(v.p.url(), 1)
	v.p.onReq = func(c *pconn, r rq) bool { return strings.HasSuffix(r.Method, "subscribe") } // never answered
	go func() { _ = f.pool.Subscribe(context.Background(), "book.H.100ms") }()
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() { _ = f.pool.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("Stop hangs behind a venue that never answers")
	}
}

// A copy whose venue confirms the subscribe and never sends, beside an honest
// copy whose stream has a real hole (the venue's own break): the updates
// after the hole must not wait for the silent copy forever.
func TestFeedSilentCopyStallsAHole(t *testing.T) {
	v := newBookVenue(t)
	v.silent.Store(int64(2), true)
	f := newFPool(t, feed.WithCopies(2))
	f.add(v.p.url(), 2)
	ch := "book.A.100ms"
	if err := f.pool.Subscribe(ctx(t), ch); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		v.step()
	}
	v.smu.Lock()
	v.ids[ch]++ // a hole: this change id is never sent
	v.smu.Unlock()
	for i := 0; i < 50; i++ {
		v.step()
	}
	notes := func() int {
		return f.in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindNotification })
	}
	gaps := func() int { return f.in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap }) }
	// The hole is the venue's own: no copy can fill it, and the updates
	// after it cannot be shown to follow. What the pool owes the consumer
	// is to say so soon (a gap notice, within the pool's hole wait), not
	// to hold the stream for the silent copy; the honest client's own
	// sequence guard then resyncs its copy (from the venue's snapshot).
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) && notes() < 61 && gaps() == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	st, _ := f.pool.Status(ctx(t))
	cs, _ := st.Channel(ch)
	if notes() < 61 && gaps() == 0 {
		t.Errorf("1.5 s after a hole, %d of 61 updates delivered and no gap notice (ChannelStatus %+v): a silent copy holds the stream", notes(), cs)
		// How long does it hold? Past WithWindow (1,024) held updates?
		for i := 0; i < 1100; i++ {
			v.step()
		}
		time.Sleep(500 * time.Millisecond)
		st, _ = f.pool.Status(ctx(t))
		cs, _ = st.Channel(ch)
		t.Logf("after 1,100 more: %d delivered; %+v", notes(), cs)
	}
	if bad := checkFeed(f.in.snapshot()); len(bad) > 0 {
		t.Errorf("consumer sees:\n%s", strings.Join(bad, "\n"))
	}
}

// Unsubscribe while the book moves: once it returns, nothing more of the
// channel reaches the handler, and the venue holds it nowhere. Unsubscribe of
// a channel never held, twice, and of "" return.
func TestFeedUnsubscribeStopsDelivery(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(2))
	f.add(v.p.url(), 2)
	ch := "book.U.100ms"
	if err := f.pool.Subscribe(ctx(t), ch, "book.K.100ms"); err != nil {
		t.Fatal(err)
	}
	stop := v.run(time.Millisecond)
	defer stop()
	time.Sleep(200 * time.Millisecond)
	if err := f.pool.Unsubscribe(ctx(t), ch); err != nil {
		t.Fatal(err)
	}
	n0 := f.in.count(func(m actors.Inbound) bool { return m.Channel == ch })
	time.Sleep(300 * time.Millisecond)
	stop()
	time.Sleep(100 * time.Millisecond)
	if n := f.in.count(func(m actors.Inbound) bool { return m.Channel == ch }); n != n0 {
		t.Errorf("%d updates of %s delivered after Unsubscribe returned", n-n0, ch)
	}
	for _, c := range v.p.all() {
		if !c.gone.Load() && c.subscribed(ch) {
			t.Errorf("connection %d still holds %s", c.n, ch)
		}
	}
	for _, c := range f.clients {
		for _, s := range c.Subscriptions() {
			if s == ch {
				t.Errorf("client %v still wants %s", c.PID().Id, ch)
			}
		}
	}
	for _, x := range []string{"book.never.100ms", ch, ""} {
		if err := f.pool.Unsubscribe(ctx(t), x); err != nil {
			t.Logf("Unsubscribe(%q): %v", x, err)
		}
	}
}

// What Subscribe("") leaves behind.
func TestFeedEmptyChannelState(t *testing.T) {
	v := newBookVenue(t)
	f := newFPool(t, feed.WithCopies(1), feed.WithRequestTimeout(time.Second))
	f.add(v.p.url(), 1)
	err := f.pool.Subscribe(ctx(t), "")
	st, _ := f.pool.Status(ctx(t))
	cs, held := st.Channel("")
	t.Logf("Subscribe(\"\"): %v; pool holds it: %v %+v; client wants %q", err, held, cs, f.clients[0].Subscriptions())
	if err == nil && held {
		t.Errorf("the pool holds a channel named \"\" (%+v)", cs)
	}
}
