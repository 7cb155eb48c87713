package feed

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
)

// record is a sink that keeps what a channel delivered.
type record struct {
	got []string // "u<Last>" for updates, "gap:<reason>" for notices
}

func (r *record) deliver(_ *channel, in *actors.Inbound) { r.got = append(r.got, string(in.Data)) }
func (r *record) gap(_ *channel, reason actors.GapReason, _, _ uint64) {
	r.got = append(r.got, "gap:"+reason.String())
}

// testChannel is a channel with n live copies.
func testChannel(n int) (*channel, []*copyOf, *record) {
	r := &record{}
	ch := &channel{name: "book", out: r, window: 16}
	var cps []*copyOf
	for range n {
		cps = append(cps, ch.addCopy(&member{connected: true, copies: map[string]*copyOf{}}))
	}
	return ch, cps, r
}

// upd is a Binance-like update covering first..last.
func upd(ch *channel, cp *copyOf, first, last uint64) {
	ch.receive(cp, venue.Seq{First: first, Last: last}, true, &actors.Inbound{Data: []byte("u" + strconv.FormatUint(last, 10))})
}

func want(t *testing.T, r *record, w ...string) {
	t.Helper()
	if !slices.Equal(r.got, w) {
		t.Fatalf("delivered %v, want %v", r.got, w)
	}
}

func TestSequenceDedup(t *testing.T) {
	ch, c, r := testChannel(2)
	upd(ch, c[0], 1, 1)
	upd(ch, c[1], 1, 1)
	upd(ch, c[1], 2, 3) // B is ahead this time
	upd(ch, c[0], 2, 3)
	upd(ch, c[0], 4, 4)
	want(t, r, "u1", "u3", "u4")
	if ch.duplicates != 2 {
		t.Fatalf("%d duplicates", ch.duplicates)
	}
}

// A hole on one copy (its connection was replaced) is filled from the
// other, in order, with no gap notice.
func TestSequenceHoleFilled(t *testing.T) {
	ch, c, r := testChannel(2)
	upd(ch, c[0], 1, 1)
	upd(ch, c[0], 4, 4) // A lost 2 and 3
	upd(ch, c[0], 5, 5)
	want(t, r, "u1") // held: B may still bring 2 and 3
	upd(ch, c[1], 1, 1)
	upd(ch, c[1], 2, 2)
	upd(ch, c[1], 3, 3)
	want(t, r, "u1", "u2", "u3", "u4", "u5")
	upd(ch, c[1], 4, 4)
	upd(ch, c[1], 5, 5)
	want(t, r, "u1", "u2", "u3", "u4", "u5")
}

// A hole every live copy passed is delivered as a gap notice, then the
// stream goes on.
func TestSequenceHoleEverywhere(t *testing.T) {
	ch, c, r := testChannel(2)
	upd(ch, c[0], 1, 1)
	upd(ch, c[1], 1, 1)
	upd(ch, c[0], 3, 3)
	want(t, r, "u1")
	upd(ch, c[1], 3, 3)
	want(t, r, "u1", "gap:sequence", "u3")
	upd(ch, c[1], 4, 4)
	want(t, r, "u1", "gap:sequence", "u3", "u4")
}

// Losing one copy costs nothing; losing every copy is one gap notice, and
// the next newer update starts again.
func TestSequenceAllLost(t *testing.T) {
	ch, c, r := testChannel(2)
	upd(ch, c[0], 1, 1)
	c[0].m.connected = false
	ch.lost()
	upd(ch, c[1], 2, 2)
	want(t, r, "u1", "u2")
	c[1].m.connected = false
	ch.lost()
	ch.lost() // once
	c[0].m.connected = true
	upd(ch, c[0], 9, 9)
	want(t, r, "u1", "u2", "gap:reconnect", "u9")
}

// Every copy lost, and a copy back whose first update follows the last
// delivered (the copies overlapped): nothing was missed, no notice.
func TestSequenceAllLostOverlapping(t *testing.T) {
	ch, c, r := testChannel(2)
	upd(ch, c[0], 1, 1)
	c[0].m.connected, c[1].m.connected = false, false
	ch.lost()
	c[1].m.connected = true
	upd(ch, c[1], 2, 2)
	want(t, r, "u1", "u2")
}

// By content nothing says what was missed: every copy lost is a notice at
// once.
func TestContentAllLost(t *testing.T) {
	ch, c, r := testChannel(2)
	ch.receive(c[0], venue.Seq{}, false, &actors.Inbound{Data: []byte("a")})
	c[0].m.connected, c[1].m.connected = false, false
	ch.lost()
	want(t, r, "a", "gap:reconnect")
}

// A copy that holds an update back for a hole releases it when the copy
// that could fill it is lost.
func TestSequenceHeldReleasedOnLoss(t *testing.T) {
	ch, c, r := testChannel(2)
	upd(ch, c[0], 1, 1)
	upd(ch, c[0], 3, 3)
	c[1].m.connected = false
	ch.lost()
	want(t, r, "u1", "gap:sequence", "u3")
}

// Past the window, the oldest held update goes out after a gap notice.
func TestSequenceWindowBound(t *testing.T) {
	ch, c, r := testChannel(2)
	upd(ch, c[0], 1, 1)
	for i := uint64(3); i < 3+uint64(ch.window)+1; i++ {
		upd(ch, c[0], i, i)
	}
	if len(ch.held) != 0 || r.got[1] != "gap:sequence" || len(r.got) != 2+ch.window+1 {
		t.Fatalf("held %d, delivered %d: %v", len(ch.held), len(r.got), r.got[:3])
	}
}

// Deribit's books: a copy that joins late starts with a snapshot; it is
// not delivered while the feed is in sync (a duplicate once the other copy
// passes it).
func TestSequenceSnapshotOfNewCopy(t *testing.T) {
	ch, c, r := testChannel(2)
	deribit := func(cp *copyOf, id, prev uint64, snap bool) {
		s := venue.Seq{First: id, Last: id, Prev: prev, HasPrev: !snap, Snapshot: snap}
		ch.receive(cp, s, true, &actors.Inbound{Data: []byte(fmt.Sprintf("u%d", id))})
	}
	deribit(c[0], 10, 0, true)
	deribit(c[0], 12, 10, false)
	deribit(c[1], 14, 0, true) // B subscribes now
	deribit(c[0], 14, 12, false)
	deribit(c[1], 17, 14, false)
	deribit(c[0], 17, 14, false)
	want(t, r, "u10", "u12", "u14", "u17")
}

// By content: each frame once, a repeat of the same bytes on one copy is a
// new update.
func TestContentDedup(t *testing.T) {
	ch, c, r := testChannel(2)
	frame := func(cp *copyOf, s string) { ch.receive(cp, venue.Seq{}, false, &actors.Inbound{Data: []byte(s)}) }
	frame(c[0], "a")
	frame(c[0], "b")
	frame(c[0], "b") // the venue sent b twice
	frame(c[1], "a")
	frame(c[1], "b")
	frame(c[1], "b")
	frame(c[1], "c")
	frame(c[0], "c")
	want(t, r, "a", "b", "b", "c")
}

// By content, a copy back on a new connection ahead of a slower copy holds
// its frames until they meet the slower copy's stream: delivered in order.
func TestContentRejoinAhead(t *testing.T) {
	ch, c, r := testChannel(2)
	frame := func(cp *copyOf, gen uint64, s string) {
		ch.receive(cp, venue.Seq{}, false, &actors.Inbound{Data: []byte(s), Generation: gen})
	}
	frame(c[0], 1, "f1")
	frame(c[1], 1, "f1")
	frame(c[1], 2, "f5") // B reconnected; A is slower
	frame(c[1], 2, "f6")
	want(t, r, "f1")
	for _, f := range []string{"f2", "f3", "f4", "f5"} {
		frame(c[0], 1, f)
	}
	want(t, r, "f1", "f2", "f3", "f4", "f5", "f6")
	frame(c[0], 1, "f6")
	frame(c[1], 2, "f7")
	frame(c[0], 1, "f7")
	want(t, r, "f1", "f2", "f3", "f4", "f5", "f6", "f7")
	// The slower copy lost while the other syncs: nothing says whether the
	// syncing copy starts where the stream was (a gap notice), then what it
	// holds.
	frame(c[1], 3, "f9")
	c[0].m.connected = false
	ch.lost()
	want(t, r, "f1", "f2", "f3", "f4", "f5", "f6", "f7", "gap:reconnect", "f9")
	frame(c[1], 3, "f10")
	want(t, r, "f1", "f2", "f3", "f4", "f5", "f6", "f7", "gap:reconnect", "f9", "f10")
}

// A quiet channel moved by content: the new copy, confirmed while the old
// one still delivered, has brought nothing yet when the old one goes: no
// hole, no notice; its first frame is delivered.
func TestContentQuietMove(t *testing.T) {
	ch, c, r := testChannel(2)
	ch.receive(c[0], venue.Seq{}, false, &actors.Inbound{Data: []byte("a"), Generation: 1})
	c[1].active = true
	ch.dropCopy(c[0])
	ch.lost()
	ch.receive(c[1], venue.Seq{}, false, &actors.Inbound{Data: []byte("b"), Generation: 1})
	want(t, r, "a", "b")
}

// The content window forgets what is older than its bound.
func TestContentWindowBound(t *testing.T) {
	w := newHashWindow(4)
	for i := range 100 {
		w.seen(w.hash([]byte(strconv.Itoa(i))), 0)
	}
	if len(w.byHash) != 4 || len(w.ring) != 4 {
		t.Fatalf("window holds %d hashes, ring %d", len(w.byHash), len(w.ring))
	}
}

// The hot path: each update of a sequenced channel arrives on two copies.
func BenchmarkDedupSequence(b *testing.B) {
	ch, c, _ := testChannel(2)
	ch.out = discard{}
	in := &actors.Inbound{Data: []byte("x")}
	b.ReportAllocs()
	for i := range b.N {
		n := uint64(i/2 + 1)
		ch.receive(c[i%2], venue.Seq{First: n, Last: n}, true, in)
	}
}

// The hot path by content: each frame arrives on two copies.
func BenchmarkDedupContent(b *testing.B) {
	ch, c, _ := testChannel(2)
	ch.out, ch.window, ch.hashes = discard{}, DefaultWindow, newHashWindow(DefaultWindow)
	frames := make([][]byte, 4096)
	for i := range frames {
		frames[i] = fmt.Appendf(nil, `{"stream":"btcusdt@trade","data":{"e":"trade","t":%d,"p":"97000.10","q":"0.002"}}`, i)
	}
	in := &actors.Inbound{Generation: 1}
	b.ReportAllocs()
	for i := range b.N {
		in.Data = frames[(i/2)%len(frames)]
		ch.receive(c[i%2], venue.Seq{}, false, in)
	}
}

type discard struct{}

func (discard) deliver(*channel, *actors.Inbound)              {}
func (discard) gap(*channel, actors.GapReason, uint64, uint64) {}
