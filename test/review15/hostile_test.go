package review15

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
)

// A handler slower than the book, with a small inbound queue: the overflow
// policy drops updates of a sequenced channel. The consumer must still
// never be given a change that does not follow the one it was given
// before, without a KindGap in between (docs/market-data.md: "Every update
// you are given follows the one before it ... Every break is announced
// where it is, in the stream").
func TestOverflowDropsAreAnnounced(t *testing.T) {
	for _, pol := range []actors.OverflowPolicy{actors.DropNewest, actors.DropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			s := newVenue(t)
			f := newFeed(s, book)
			in := &inbox{}
			slow := func(m actors.Inbound) {
				in.handler(m)
				time.Sleep(200 * time.Microsecond)
			}
			c := connect(t, s.url(), deribitOpts(slow, actors.WithInboundQueue(8, 0, pol))...)
			subscribeBook(t, c, in, book)
			for i := 0; i < 3000; i++ {
				f.step(0)
			}
			waitFor(t, 10*time.Second, "the queue drained", c, in, func() bool { return c.Health().InboundQueued == 0 })
			time.Sleep(20 * time.Millisecond)
			h := c.Health()
			msgs := in.snapshot()
			bad := checkBook(msgs)
			if h.InboundDropped == 0 {
				t.Skip("nothing dropped: the handler kept up")
			}
			if len(bad) > 0 {
				t.Fatalf("%d dropped by the overflow policy, %d KindGap delivered: the consumer's book applies changes that do not follow:\n%s",
					h.InboundDropped, in.count(isGap(book)), strings.Join(bad[:min(5, len(bad))], "\n"))
			}
		})
	}
}

// Gap notices under a full queue, with either policy: every break the
// client counted is delivered (none dropped or evicted by the overflow
// policy).
func TestGapNoticesSurviveFullQueue(t *testing.T) {
	for _, pol := range []actors.OverflowPolicy{actors.DropNewest, actors.DropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			s := newVenue(t)
			f := newFeed(s, book)
			in := &inbox{}
			slow := func(m actors.Inbound) {
				in.handler(m)
				time.Sleep(time.Millisecond)
			}
			c := connect(t, s.url(), deribitOpts(slow, actors.WithInboundQueue(2, 0, pol),
				actors.WithRetryDelay(time.Millisecond), actors.WithMaxBackoff(5*time.Millisecond))...)
			subscribeBook(t, c, in, book)
			for r := 0; r < 20; r++ {
				for i := 0; i < 50; i++ {
					f.step(0)
				}
				f.step(1)
				time.Sleep(10 * time.Millisecond)
			}
			waitFor(t, 10*time.Second, "the queue drained", c, in, func() bool { return c.Health().InboundQueued == 0 })
			time.Sleep(50 * time.Millisecond)
			h := c.Health()
			if g := uint64(in.count(isGap(book))); g != h.SequenceGaps || g == 0 {
				t.Fatalf("%d KindGap delivered, Health.SequenceGaps %d (inbound dropped %d)", g, h.SequenceGaps, h.InboundDropped)
			}
		})
	}
}

func deribitOpts(h func(actors.Inbound), more ...actors.Option) []actors.Option {
	return append(deribitBase(h), more...)
}

// Hostile sequence fields in a Deribit book change, between two good
// changes: a number past uint64, negative, fractional, a string, null,
// missing, a change without prev_change_id. None may be handed to the
// consumer as an update that continues its book (it does not follow what
// was given): the guard must drop it or announce a gap.
func TestDeribitHostileSequenceFields(t *testing.T) {
	cases := map[string]string{
		"past uint64":   `"change_id":100000000000000000000,"prev_change_id":101`,
		"negative":      `"change_id":-1,"prev_change_id":101`,
		"fraction":      `"change_id":102.5,"prev_change_id":101`,
		"string":        `"change_id":"102","prev_change_id":"101"`,
		"null":          `"change_id":null,"prev_change_id":101`,
		"missing":       `"prev_change_id":101`,
		"no prev":       `"change_id":102`,
		"prev negative": `"change_id":102,"prev_change_id":-1`,
		"exp":           `"change_id":1.02e2,"prev_change_id":101`,
	}
	for name, fields := range cases {
		t.Run(name, func(t *testing.T) {
			s := newVenue(t)
			s.afterSub = func(c *vconn, ch string, k int64) { _ = c.write(dSnap(ch, 100)) }
			in := &inbox{}
			c := connect(t, s.url(), deribitBase(in.handler)...)
			subscribeBook(t, c, in, book)
			w := s.last()
			_ = w.write(dChange(book, 101, 100))
			evil := `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"` + book + `","data":{"type":"change","timestamp":1,"EVIL":1,` + fields + `,"bids":[["delete",100.0,0]],"asks":[]}}}`
			_ = w.write(evil)
			_ = w.write(dChange(book, 102, 101))
			waitFor(t, 3*time.Second, "change 102 or a gap", c, in, func() bool {
				return in.count(isNote(book)) >= 3 || in.count(isGap(book)) > 0
			})
			time.Sleep(30 * time.Millisecond)
			msgs := in.snapshot()
			synced := true
			for _, m := range msgs {
				if m.Kind == actors.KindGap {
					synced = false
				}
				if m.Snapshot {
					synced = true
				}
				if m.Kind == actors.KindNotification && strings.Contains(string(m.Data), `"EVIL"`) && synced {
					t.Fatalf("a change whose sequence cannot be read (%s) was delivered as part of the in-sync book (snapshot=%v), no KindGap before it:\n%s", fields, m.Snapshot, dump(msgs, 10))
				}
			}
		})
	}
}

// The last uint64: snapshot 2^64-2, change 2^64-1, then the next change
// (0, prev 2^64-1) and the one after. Nothing panics; whatever is
// delivered follows (the consumer's check is on prev_change_id).
func TestDeribitMaxUint64(t *testing.T) {
	s := newVenue(t)
	const top = ^uint64(0)
	s.afterSub = func(c *vconn, ch string, k int64) { _ = c.write(dSnap(ch, top-1)) }
	in := &inbox{}
	c := connect(t, s.url(), deribitBase(in.handler)...)
	subscribeBook(t, c, in, book)
	w := s.last()
	_ = w.write(dChange(book, top, top-1))
	_ = w.write(dChange(book, 0, top))
	_ = w.write(dChange(book, 1, 0))
	time.Sleep(200 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 10))
	}
	t.Logf("delivered %d notifications, %d gaps, dropped %d", in.count(isNote(book)), in.count(isGap(book)), c.Health().SequenceDropped)
}

// Deep nesting and a huge frame in a book change: nothing hangs or
// crashes, and the consumer's book never takes a change that does not
// follow (a frame the client cannot classify as a notification must lead
// to a gap notice, not to a silent hole).
func TestDeribitDeepAndHugeFrames(t *testing.T) {
	for name, filler := range map[string]string{
		"deep": `"x":` + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + `,"bids":[],`,
		"huge": `"bids":[` + strings.Repeat(`["new",1.0,1.0],`, 150000) + `["new",1.0,1.0]],`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newVenue(t)
			f := newFeed(s, book)
			in := &inbox{}
			c := connect(t, s.url(), deribitBase(in.handler)...)
			subscribeBook(t, c, in, book)
			f.mu.Lock()
			_ = f.live.write(fmt.Sprintf(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":%q,"data":{"type":"change",%s"asks":[],"prev_change_id":%d,"change_id":%d}}}`, book, filler, f.cur, f.cur+1))
			f.cur++
			f.mu.Unlock()
			waitFor(t, 15*time.Second, "the book goes on", c, in, func() bool {
				f.step(0)
				msgs := in.snapshot()
				return len(msgs) > 0 && msgs[len(msgs)-1].Kind == actors.KindNotification && !msgs[len(msgs)-1].Snapshot && in.count(isNote(book)) > 3
			})
			msgs := in.snapshot()
			if bad := checkBook(msgs); len(bad) > 0 {
				t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
			}
			t.Logf("kinds of the filler frame: text %d, gaps %d", in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindText }), in.count(isGap(book)))
		})
	}
}
