package feed

import (
	"hash/maphash"
	"slices"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
)

// maxSlots bounds the copies of one channel at a time: k, plus the copies
// being moved in or out.
const maxSlots = 2 * MaxCopies

// sink receives what a channel delivers, in order.
type sink interface {
	deliver(ch *channel, in *actors.Inbound)
	gap(ch *channel, reason actors.GapReason, expected, got uint64)
}

// channel is one channel the pool holds: where its copies are, and its
// de-duplication. The pool's actor alone touches it.
type channel struct {
	name   string
	copies []*copyOf
	out    sink
	window int

	// By sequence (venue.Sequencer).
	sequenced bool   // its updates carry a sequence
	down      bool   // every copy was lost since the last update delivered
	started   bool   // an update was delivered
	broken    bool   // a gap was delivered: the next newer update starts again
	last      uint64 // the Last of the update delivered last
	held      []heldUpdate

	// By content, while the channel has two copies or more.
	hashes *hashWindow

	delivered, duplicates, gaps, moves uint64
	removed                            bool // unsubscribed (or the pool stopping): nothing more is delivered
}

// copyOf is one copy of a channel: the channel wanted on one client.
type copyOf struct {
	owner  *channel
	m      *member
	slot   int       // its index in the content window's counts
	pos    uint64    // the highest Last it brought
	lastAt time.Time // when it brought its last frame, or was made (a silent copy fills no hole)
	active bool      // the client confirmed the subscription
	err    error     // the venue's refusal of its subscribe, until it is confirmed
	going  bool      // being removed: its Unsubscribe is under way
	// leaving: moving to another client; it stays live until the new
	// copy is confirmed, and is removed then.
	leaving bool

	// By content: the connection its last frame came on, and whether it
	// is syncing (on a new connection, its frames held in pend until they
	// meet the stream of a copy in sync).
	gen     uint64
	syncing bool
	pend    []pending
}

type pending struct {
	h  uint64
	in *actors.Inbound
}

type heldUpdate struct {
	s  venue.Seq
	in *actors.Inbound
}

// live reports whether cp may still bring updates: its client is
// connected (a copy being removed delivers until its unsubscribe is
// confirmed).
func (cp *copyOf) live() bool { return cp.m.connected }

// wanted counts the copies that stay (not being moved away or removed).
func (ch *channel) wanted() int {
	n := 0
	for _, cp := range ch.copies {
		if !cp.going && !cp.leaving {
			n++
		}
	}
	return n
}

func (ch *channel) liveCopies() int {
	n := 0
	for _, cp := range ch.copies {
		if cp.live() {
			n++
		}
	}
	return n
}

// addCopy places a copy on m; nil when the channel has no free slot.
func (ch *channel) addCopy(m *member) *copyOf {
	used := uint32(0)
	for _, cp := range ch.copies {
		used |= 1 << cp.slot
	}
	for s := range maxSlots {
		if used&(1<<s) == 0 {
			cp := &copyOf{owner: ch, m: m, slot: s, lastAt: time.Now()} // waited for from its start
			ch.copies = append(ch.copies, cp)
			if len(ch.copies) > 1 && ch.hashes == nil {
				// From before the new copy's subscribe goes out: whatever
				// it brings may have been delivered from another.
				ch.hashes = newHashWindow(ch.window)
			}
			return cp
		}
	}
	return nil
}

// dropCopy forgets cp: its slot's counts are cleared for the next copy
// that takes it.
func (ch *channel) dropCopy(cp *copyOf) {
	i := slices.Index(ch.copies, cp)
	if i < 0 {
		return
	}
	ch.copies = slices.Delete(ch.copies, i, i+1)
	if ch.hashes != nil {
		ch.hashes.clearSlot(cp.slot)
	}
}

// receive routes one notification that arrived on copy cp (nil: on a
// client that holds no copy of the channel any more).
func (ch *channel) receive(cp *copyOf, s venue.Seq, sequenced bool, in *actors.Inbound) {
	if cp != nil {
		cp.lastAt = time.Now()
	}
	if sequenced {
		ch.bySequence(cp, s, in)
		return
	}
	switch {
	case ch.hashes == nil:
		ch.emit(in)
	case cp == nil:
		ch.duplicates++ // a straggler of a copy removed: the others carry the feed
	default:
		ch.byContent(cp, in)
	}
}

// byContent delivers a frame the first time it arrives on any copy. A copy
// on a new connection (its first frame, or the first after a reconnect)
// is syncing, as a rotation's merge holds the new connection: its frames
// are held until they meet the stream of a copy in sync (one of its frames
// was delivered already, or a copy in sync delivers one it holds), so that
// a copy that rejoins ahead of a slower one does not deliver out of order.
// With no other copy in sync it is in sync at once.
func (ch *channel) byContent(cp *copyOf, in *actors.Inbound) {
	w := ch.hashes
	h := w.hash(in.Data)
	if in.Generation != cp.gen {
		ch.synced(cp) // what the old connection held goes first
		cp.gen, cp.syncing = in.Generation, true
	}
	if cp.syncing {
		switch {
		case w.dup(h, cp.slot):
			ch.synced(cp) // it has met the stream
		case ch.otherInSync(cp) && len(cp.pend) < ch.window:
			cp.pend = append(cp.pend, pending{h: h, in: in}) // counted when it is matched or released
			return
		default:
			ch.synced(cp)
		}
	}
	if w.seen(h, cp.slot) {
		ch.duplicates++
		return
	}
	ch.emit(in)
	for _, r := range ch.copies {
		if r.syncing && len(r.pend) > 0 {
			if i := slices.IndexFunc(r.pend, func(p pending) bool { return p.h == h }); i >= 0 {
				ch.synced(r) // the frames it held up to this one are duplicates now, the rest new
			}
		}
	}
}

// synced ends cp's syncing: the frames it holds are taken in their order,
// each delivered unless another copy brought it already.
func (ch *channel) synced(cp *copyOf) {
	cp.syncing = false
	pend := cp.pend
	cp.pend = nil
	for _, p := range pend {
		if ch.hashes.seen(p.h, cp.slot) {
			ch.duplicates++
		} else {
			ch.emit(p.in)
		}
	}
}

// otherInSync reports whether a live copy other than cp is in sync.
func (ch *channel) otherInSync(cp *copyOf) bool {
	for _, x := range ch.copies {
		if x != cp && x.live() && !x.syncing && x.gen != 0 {
			return true
		}
	}
	return false
}

func (ch *channel) emit(in *actors.Inbound) {
	ch.delivered++
	ch.broken = false
	ch.out.deliver(ch, in)
}

func (ch *channel) emitSeq(s venue.Seq, in *actors.Inbound) {
	ch.started, ch.broken, ch.down, ch.last = true, false, false, s.Last
	ch.emit(in)
}

// bySequence delivers s the first time it arrives, in order: an update at
// or below what was delivered is a duplicate; one that does not follow is
// held while a live copy may still bring what is missing.
func (ch *channel) bySequence(cp *copyOf, s venue.Seq, in *actors.Inbound) {
	ch.sequenced = true
	if cp != nil && s.Last > cp.pos {
		cp.pos = s.Last
	}
	switch {
	case ch.broken && s.Snapshot, !ch.started:
		ch.emitSeq(s, in)
	case s.Last <= ch.last:
		ch.duplicates++
		return
	case ch.broken, !s.Snapshot && s.Follows(ch.last):
		ch.emitSeq(s, in)
	default:
		ch.hold(s, in)
	}
	ch.drain()
	ch.settle()
}

// hold keeps an update that does not follow, in order of Last; past the
// window the oldest held is delivered after a gap notice.
func (ch *channel) hold(s venue.Seq, in *actors.Inbound) {
	i, found := slices.BinarySearchFunc(ch.held, s.Last, func(h heldUpdate, last uint64) int {
		switch {
		case h.s.Last < last:
			return -1
		case h.s.Last > last:
			return 1
		}
		return 0
	})
	if found {
		ch.duplicates++
		return
	}
	ch.held = slices.Insert(ch.held, i, heldUpdate{s: s, in: in})
	if len(ch.held) > ch.window {
		ch.release(ch.reason())
	}
}

// drain delivers the held updates that follow now, and drops those
// delivered meanwhile.
func (ch *channel) drain() {
	n := 0
	for n < len(ch.held) {
		h := ch.held[n]
		if h.s.Last <= ch.last {
			ch.duplicates++
		} else if !h.s.Snapshot && h.s.Follows(ch.last) {
			ch.emitSeq(h.s, h.in)
		} else {
			break
		}
		n++
	}
	ch.popHeld(n)
}

func (ch *channel) popHeld(n int) {
	if n == 0 {
		return
	}
	clear(ch.held[:n])
	ch.held = ch.held[n:]
	if len(ch.held) == 0 {
		ch.held = ch.held[:0:0] // let the spent array go
	}
}

// settle delivers the held updates that no live copy can complete any
// more: a copy brings its updates in order, so one that has brought an
// update at or past the oldest held one has passed the hole without
// filling it. Each hole delivered is a gap notice first.
//
// A copy that lags but delivers may fill the hole (bounded by the window);
// one that has brought nothing for holeWait (its venue confirmed the
// subscribe and never sends, or it is reconnecting: a restored
// subscription does not bring the past again) does not hold the channel
// back. The pool actor's hole timer calls settle on a quiet channel.
func (ch *channel) settle() {
	for len(ch.held) > 0 {
		limit := ch.held[0].s.Last
		for _, cp := range ch.copies {
			if cp.live() && cp.pos < limit && time.Since(cp.lastAt) < holeWait {
				return // it may still bring what is missing
			}
		}
		ch.release(ch.reason())
	}
}

// holeWait is how long a copy may bring nothing and still be waited for
// to fill a hole.
const holeWait = 500 * time.Millisecond

// reason is why the stream has a hole: every copy was lost (reconnect),
// or the venue's own sequence broke on every copy.
func (ch *channel) reason() actors.GapReason {
	if ch.down || ch.liveCopies() == 0 {
		return actors.GapReconnect
	}
	return actors.GapSequence
}

// release delivers the oldest held update after a gap notice, and what
// follows it.
func (ch *channel) release(reason actors.GapReason) {
	h := ch.held[0]
	ch.popHeld(1)
	ch.gapNotice(reason, h.s.First)
	ch.emitSeq(h.s, h.in)
	ch.drain()
}

func (ch *channel) gapNotice(reason actors.GapReason, got uint64) {
	expected := uint64(0)
	if ch.started {
		expected = ch.last + 1
	}
	ch.gaps++
	ch.broken = true
	ch.out.gap(ch, reason, expected, got)
}

// lost is called when a copy stopped being live. By sequence, what was
// held for it may be deliverable now; with no live copy left the channel
// is down, and its gap notice comes when its stream resumes, only if the
// update that resumes it does not follow the last one delivered (a copy
// that reconnected may have overlapped the one lost: the sequence tells).
// By content nothing tells: with no live copy in sync left (a copy still
// syncing never met the stream), a gap notice at once, then what the
// syncing copies hold.
func (ch *channel) lost() {
	if ch.removed {
		return // its copies go because it is not wanted: no hole to tell
	}
	if ch.sequenced {
		if ch.liveCopies() > 0 || len(ch.held) > 0 {
			ch.settle()
		} else if ch.delivered > 0 && !ch.broken {
			ch.down = true
		}
		return
	}
	inSync := false
	for _, x := range ch.copies {
		// In sync: it brought frames that met the stream, or it was
		// confirmed while another copy still delivered and has brought
		// nothing yet (a quiet channel moved: its stream overlaps).
		if x.live() && (ch.hashes == nil || !x.syncing && (x.gen != 0 || x.active && !x.m.degraded)) {
			inSync = true
		}
	}
	if !inSync && ch.delivered > 0 && !ch.broken {
		ch.gapNotice(actors.GapReconnect, 0)
	}
	for _, r := range ch.copies {
		if r.syncing && len(r.pend) > 0 && !ch.otherInSync(r) {
			ch.synced(r) // no copy in sync left to meet
		}
	}
}

// hashWindow recognises by content an update that another copy brought
// already: for each hash of the last window deliveries, how often it was
// delivered and how often each copy (slot) has brought it. A copy that
// brings the same bytes once more than was delivered brings a new update.
type hashWindow struct {
	seed   maphash.Seed
	byHash map[uint64]hashEntry
	ring   []uint64 // delivered hashes, oldest at head, circular once full
	head   int
	limit  int
}

type hashEntry struct {
	delivered uint16
	seen      [maxSlots]uint16
}

func newHashWindow(limit int) *hashWindow {
	return &hashWindow{seed: maphash.MakeSeed(), byHash: make(map[uint64]hashEntry), limit: limit}
}

func (w *hashWindow) hash(data []byte) uint64 { return maphash.Bytes(w.seed, data) }

// seen counts a frame of hash h brought by slot and reports whether it is a
// duplicate (else it counts as delivered).
func (w *hashWindow) seen(h uint64, slot int) bool {
	e := w.byHash[h]
	e.seen[slot]++
	if e.seen[slot] <= e.delivered {
		w.byHash[h] = e
		return true
	}
	e.delivered++
	w.byHash[h] = e
	w.push(h)
	return false
}

// dup reports whether a frame of hash h from slot would be a duplicate,
// counting nothing.
func (w *hashWindow) dup(h uint64, slot int) bool {
	e := w.byHash[h]
	return e.seen[slot] < e.delivered
}

func (w *hashWindow) push(h uint64) {
	if len(w.ring) < w.limit {
		w.ring = append(w.ring, h)
		return
	}
	old := w.ring[w.head]
	w.ring[w.head] = h
	w.head = (w.head + 1) % w.limit
	e := w.byHash[old]
	if e.delivered <= 1 {
		delete(w.byHash, old)
		return
	}
	e.delivered--
	for s := range e.seen {
		if e.seen[s] > 0 {
			e.seen[s]--
		}
	}
	w.byHash[old] = e
}

func (w *hashWindow) clearSlot(slot int) {
	for h, e := range w.byHash {
		if e.seen[slot] != 0 {
			e.seen[slot] = 0
			w.byHash[h] = e
		}
	}
}
