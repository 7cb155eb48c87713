package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/venue"
)

// Sequence guards (issue 15, docs/market-data.md). For every wanted
// channel whose notifications carry sequence numbers (the venue's
// venue.Sequencer, or WithSequencer), the client checks that each update
// follows the one before, on the actor, after a rotation's merge (so a
// planned rotation, which has no gap, shows none). A break, or the first
// update after a reconnect, puts a gap notice (KindGap) in the stream
// where the break is, and the channel is put back in sync the way the
// venue allows:
//   - ResyncResubscribe (Deribit): the channel is subscribed again, alone;
//     its updates are dropped until its first snapshot (or, for a venue
//     that sends none, its first update once the subscribe is confirmed);
//   - ResyncSnapshot (Binance diff depth): the user's snapshot fetch
//     (WithSnapshot) runs off the actor; the updates that arrive meanwhile
//     are held (bounded), and the snapshot and then the held updates that
//     follow it are delivered in order.
//
// Resyncs of one channel back off (RetryDelay doubling up to MaxBackoff)
// when they come within resyncCalm (1 s) of the last one's end: a venue
// that breaks a sequence on every message gets a ladder of resyncs, not a
// storm, while a loss now and then is repaired at once. A
// resync that has not completed within twice RequestTimeout is started
// again.

// SnapshotFunc fetches a channel's full image for a venue whose stream
// carries deltas only (venue.ResyncSnapshot): Binance's REST depth snapshot
// for a diff depth stream. It runs on a goroutine of its own, with a ctx
// that ends after RequestTimeout or when the client stops; a panic is
// recovered and counted as a failed fetch (retried with backoff).
type SnapshotFunc func(ctx context.Context, channel string) (Snapshot, error)

// Snapshot is a channel's full image, as a SnapshotFunc returns it.
type Snapshot struct {
	// Data is delivered as a notification of the channel with
	// Inbound.Snapshot true (the receiver owns it).
	Data []byte
	// Seq is the last update the image includes (Binance's lastUpdateId):
	// held updates that end at or before it are dropped, and the first one
	// delivered after it must follow it.
	Seq uint64
}

// WithSequencer sets the rule that reads sequence numbers from wanted
// channels' notifications (Config.Sequencer), instead of the venue's; nil
// keeps the venue's.
func WithSequencer(s venue.Sequencer) Option { return func(c *Config) { c.Sequencer = s } }

// WithSnapshot sets the snapshot fetch of channels whose stream is deltas
// only (Config.Snapshot). Without it such a channel's gaps are reported
// (KindGap) but not repaired: the update after a gap is delivered as the
// new start.
func WithSnapshot(fn SnapshotFunc) Option { return func(c *Config) { c.Snapshot = fn } }

// Bounds of a resync.
const (
	maxHeld      = 4096     // updates held per channel while a snapshot is fetched; past it the oldest go
	maxHeldBytes = 16 << 20 // and their bytes
	// maxHeldTotal bounds the bytes held over all of a client's channels:
	// past it an update is dropped rather than held (the hole it leaves
	// shows as a gap after the snapshot, and the channel is resynced).
	maxHeldTotal = 64 << 20
	// resyncCalm: a break within this time of the last resync's end
	// continues a streak, and waits a backoff before it is repaired.
	resyncCalm = time.Second
)

// ErrSnapshot is the cause a failed snapshot fetch is logged with; the
// fetch's own error is wrapped.
var ErrSnapshot = errors.New("zenws: snapshot fetch failed")

// seqState is where one sequenced channel stands.
type seqState uint8

const (
	seqLive          seqState = iota // in sync (or nothing seen yet: !has)
	seqResubscribing                 // waiting for the snapshot of a resubscribe
	seqFetching                      // the user's snapshot fetch runs; updates are held
	seqWaiting                       // a resync waits its backoff (due)
)

// chanSeq is one sequenced channel's state.
type chanSeq struct {
	last      uint64 // the Last of the latest update delivered
	gen       uint64 // the connection it came on
	has       bool   // an update was delivered in this epoch
	confirmed bool   // resubscribing: the venue confirmed the subscribe again
	state     seqState
	mode      venue.ResyncMode
	epoch     uint64    // the stream epoch its state belongs to
	token     uint64    // the resync in flight (a fetch's answer names it)
	started   time.Time // when the resync in flight started
	due       time.Time // seqWaiting: when the resync starts
	ended     time.Time // when the last resync completed
	streak    int       // resyncs in a row, each within resyncCalm of the last
	held      []heldUpdate
	heldBytes int64
}

type heldUpdate struct {
	in  *Inbound
	seq venue.Seq
}

// seqGuard is the client's sequence state, in the durable state's actor
// part (a restarted actor keeps it, so a restart is a reconnect to it).
type seqGuard struct {
	// epoch grows with every connection that is not a rotation's: the
	// stream has a hole between two epochs.
	epoch uint64
	chans map[string]*chanSeq
	token uint64
	held  int64 // bytes held over all channels (maxHeldTotal)
	// fresh is the freshness state (freshness.go).
	fresh   map[string]*freshState
	timer   *time.Timer
	armed   time.Time       // when the timer fires; zero: not armed
	liveBuf []silentChannel // checkFreshness's list, kept between ticks
	// Stalled connections (freshness.go).
	stallGen    uint64    // the connection last reported stalled
	stallStreak int       // stalls in a row, each within StableAfter of the last
	lastStall   time.Time // when the last was reported
}

// seq returns the guard, made on first use; on the actor goroutine only.
func (d *durable) seq() *seqGuard {
	x := d.extras()
	if x.seq == nil {
		x.seq = &seqGuard{chans: map[string]*chanSeq{}}
	}
	return x.seq
}

// sequencer is the rule in force: the user's, else the venue's.
func (c *Config) sequencer() venue.Sequencer {
	if c.Sequencer != nil {
		return c.Sequencer
	}
	s, _ := c.Venue.(venue.Sequencer)
	return s
}

// sequence reads one notification's place, with a panic taken as none.
func (c *Config) sequence(sq venue.Sequencer, ch string, data []byte) (s venue.Seq, ok bool) {
	defer func() {
		if recover() != nil {
			s, ok = venue.Seq{}, false
		}
	}()
	s, ok = sq.Sequence(ch, data)
	if ok && s.Last < s.First {
		return venue.Seq{}, false // not a range: trust nothing of it
	}
	return s, ok
}

// newEpoch starts a new stream epoch: a connection that is not a
// rotation's (a connect, a reconnect, a restart's). Channels of the epoch
// before report a GapReconnect with their first update.
func (a *clientActor) newEpoch() {
	if (a.d.extra == nil || a.d.extra.seq == nil) && len(a.cfg.Freshness) == 0 {
		return // no channel sequenced yet, nothing to watch: no state (made by the first sequenced update)
	}
	g := a.d.seq()
	g.epoch++
	for ch, st := range g.chans {
		if !a.d.intent.wants(ch) {
			delete(g.chans, ch) // unwanted since: forget it
			continue
		}
		st.dropHeld(g)
		st.state, st.token = seqLive, 0
		a.d.intent.setResyncing(ch, false)
	}
	clear(g.fresh)
	a.armGuard()
}

// emit queues in for the handler, through the sequence guard for a
// notification of a sequenced channel.
func (a *clientActor) emit(in *Inbound) {
	if in.Kind == KindNotification && in.Channel != "" {
		if sq := a.cfg.sequencer(); sq != nil && !a.sequenced(sq, in) {
			return
		}
	}
	a.d.in.push(in)
}

// tracked is ch's sequence state, or nil (no guard, or not a sequenced
// channel yet).
func (a *clientActor) tracked(ch string) *chanSeq {
	if a.d.extra == nil || a.d.extra.seq == nil {
		return nil
	}
	return a.d.extra.seq.chans[ch]
}

// sequenced checks one notification. It reports true for a frame of a
// channel the guard does not keep (emit queues it as it is); a sequenced
// channel's frames it delivers itself (accept), holds or drops, with a gap
// notice before a break.
func (a *clientActor) sequenced(sq venue.Sequencer, in *Inbound) bool {
	s, ok := a.cfg.sequence(sq, in.Channel, in.Data)
	if !ok {
		st := a.tracked(in.Channel)
		if st == nil {
			return true // not a sequenced channel
		}
		a.unreadable(in, st)
		return false
	}
	g := a.d.seq()
	st := g.chans[in.Channel]
	if st == nil {
		if len(g.chans) >= maxWanted || !a.d.intent.wants(in.Channel) {
			return true // not a wanted channel: nothing to keep in sync
		}
		st = &chanSeq{epoch: g.epoch}
		g.chans[in.Channel] = st
	}
	st.mode = s.Resync
	if st.epoch != g.epoch { // the first update after a reconnect
		st.epoch = g.epoch
		if st.has {
			a.d.rareCounts().gaps.Add(1)
			a.gap(in, st, GapReconnect, 0)
			st.has = false
		}
	}
	switch st.state {
	case seqResubscribing:
		if s.Snapshot || (st.confirmed && st.mode == venue.ResyncRestart) {
			a.resynced(in.Channel, st)
			a.accept(in, st, s)
			return false
		}
		a.d.rareCounts().seqDropped.Add(1)
		return false
	case seqFetching, seqWaiting:
		if st.state == seqWaiting && st.mode != venue.ResyncSnapshot {
			if s.Snapshot { // the venue sent a fresh image on its own
				a.resynced(in.Channel, st)
				a.accept(in, st, s)
				return false
			}
			a.d.rareCounts().seqDropped.Add(1)
			return false
		}
		st.hold(in, s, a.d, g)
		return false
	}
	switch {
	case !st.has:
		switch {
		case s.Snapshot:
		case st.mode == venue.ResyncResubscribe: // it starts from its snapshot, on its way
			a.awaitSnapshot(in.Channel, st)
			a.d.rareCounts().seqDropped.Add(1)
			return false
		case st.mode == venue.ResyncSnapshot && a.cfg.Snapshot != nil:
			st.hold(in, s, a.d, g) // a delta stream starts from the user's snapshot
			a.startResync(in.Channel, st, in.Generation)
			return false
		}
	case s.Snapshot:
		// An image numbered at or below the book: from another connection
		// (a rotation's new one, merged after the old one drained) it is
		// older than what was delivered; on the same connection the venue
		// started its numbering again, and the image replaces the book.
		if s.Last <= st.last && in.Generation != st.gen {
			a.d.rareCounts().seqDropped.Add(1)
			return false
		}
	case s.Follows(st.last):
	case s.Last <= st.last: // already delivered (a replay, a rotation's overlap)
		a.d.rareCounts().seqDropped.Add(1)
		return false
	default:
		a.d.rareCounts().gaps.Add(1)
		a.gap(in, st, GapSequence, s.First)
		if st.mode == venue.ResyncSnapshot && a.cfg.Snapshot == nil {
			break // nothing can repair it: this update is the new start
		}
		if st.mode == venue.ResyncSnapshot {
			st.hold(in, s, a.d, g)
		} else {
			a.d.rareCounts().seqDropped.Add(1)
		}
		a.startResync(in.Channel, st, in.Generation)
		return false
	}
	a.accept(in, st, s)
	return false
}

// accept delivers an update of a sequenced channel: in sync from it on.
// When the inbound queue has no room for it (the handler is slower than
// the stream), the overflow policy does not punch a silent hole: the hole
// is announced (GapOverflow) and the channel resynced.
func (a *clientActor) accept(in *Inbound, st *chanSeq, s venue.Seq) {
	in.Snapshot = s.Snapshot
	if a.d.in.pushKept(in) {
		st.has, st.last, st.gen = true, s.Last, in.Generation
		return
	}
	a.d.rareCounts().gaps.Add(1)
	a.gap(in, st, GapOverflow, s.First)
	st.has = false
	if st.mode == venue.ResyncSnapshot && a.cfg.Snapshot == nil {
		return // nothing can repair it: the next update is the new start
	}
	a.startResync(in.Channel, st, in.Generation)
}

// unreadable takes a frame of a sequenced channel whose sequence cannot be
// read (a field missing or out of range, a rule that panicked): it cannot
// be shown to follow, so it is dropped, and a channel in sync is taken as
// broken there.
func (a *clientActor) unreadable(in *Inbound, st *chanSeq) {
	a.d.rareCounts().seqDropped.Add(1)
	if st.state != seqLive || !st.has || st.epoch != a.d.extra.seq.epoch {
		return // out of sync already, or not started: it waits for its start
	}
	a.d.rareCounts().gaps.Add(1)
	a.gap(in, st, GapSequence, 0)
	st.has = false
	if st.mode == venue.ResyncSnapshot && a.cfg.Snapshot == nil {
		return
	}
	a.startResync(in.Channel, st, in.Generation)
}

// awaitSnapshot drops a snapshot-first channel's updates until its
// snapshot, which a subscribe has on its way (a venue may send an update
// before it): the channel shows as resyncing, and if no snapshot comes
// within the resync bound it is subscribed again (checkResyncs).
func (a *clientActor) awaitSnapshot(ch string, st *chanSeq) {
	st.state, st.started, st.confirmed = seqResubscribing, time.Now(), false
	a.d.intent.setResyncing(ch, true)
	a.armGuard()
}

// gap queues a gap notice for in's channel, in the stream before in.
func (a *clientActor) gap(in *Inbound, st *chanSeq, reason GapReason, got uint64) {
	var expected uint64
	if st.has {
		expected = st.last + 1
	}
	a.d.in.pushNotice(&Inbound{Client: a.self, Kind: KindGap, Channel: in.Channel, Generation: in.Generation, Received: in.Received,
		Gap: &Gap{Channel: in.Channel, Reason: reason, Expected: expected, Got: got, Generation: in.Generation}})
}

// hold keeps an update while a snapshot is fetched; past the bounds the
// oldest go (the snapshot, newer, makes them moot; a hole it leaves shows
// as a gap after it).
func (st *chanSeq) hold(in *Inbound, s venue.Seq, d *durable, g *seqGuard) {
	size := int64(len(in.Data))
	if g.held+size > maxHeldTotal {
		d.rareCounts().seqDropped.Add(1)
		return
	}
	st.held = append(st.held, heldUpdate{in: in, seq: s})
	st.heldBytes += size
	g.held += size
	for len(st.held) > maxHeld || (st.heldBytes > maxHeldBytes && len(st.held) > 1) {
		n := int64(len(st.held[0].in.Data))
		st.heldBytes -= n
		g.held -= n
		st.held[0] = heldUpdate{}
		st.held = st.held[1:]
		d.rareCounts().seqDropped.Add(1)
	}
}

// dropHeld forgets the held updates.
func (st *chanSeq) dropHeld(g *seqGuard) {
	g.held -= st.heldBytes
	clear(st.held)
	st.held, st.heldBytes = nil, 0
}

// startResync puts ch back in sync now, or when its backoff is over.
func (a *clientActor) startResync(ch string, st *chanSeq, gen uint64) {
	now := time.Now()
	if st.state == seqLive { // a new episode: back off if the last ended lately
		if !st.ended.IsZero() && now.Sub(st.ended) < resyncCalm {
			st.streak++
		} else {
			st.streak = 1
		}
		a.d.intent.setResyncing(ch, true)
		if st.streak > 1 {
			st.state, st.due = seqWaiting, now.Add(a.d.retryWait(st.streak-1))
			a.armGuard()
			return
		}
	}
	a.d.rareCounts().resyncs.Add(1)
	g := a.d.seq()
	g.token++
	st.token, st.started, st.confirmed = g.token, now, false
	if st.mode == venue.ResyncSnapshot {
		st.state = seqFetching
		a.fetchSnapshot(ch, st.token, gen)
	} else {
		st.state = seqResubscribing
		if !a.d.intent.resubscribe(ch) {
			st.confirmed = true // not active here: the restore subscribes it, and its first update starts again
		}
	}
	a.armGuard()
}

// resynced: ch's resync is over; the update that ends it is accepted next.
func (a *clientActor) resynced(ch string, st *chanSeq) {
	st.state, st.token, st.has, st.ended = seqLive, 0, false, time.Now()
	a.d.intent.setResyncing(ch, false)
}

// snapshotDone is a snapshot fetch's outcome, for the actor.
type snapshotDone struct {
	channel string
	token   uint64
	gen     uint64
	snap    Snapshot
	err     error
}

// resubscribedMsg: the venue confirmed a resubscribe of channel on
// connection gen.
type resubscribedMsg struct {
	channel string
	gen     uint64
}

// resubscribed tells the actor that a resubscribe was confirmed; any
// goroutine.
func (d *durable) resubscribed(ch string, gen uint64) {
	if !d.isStopped() {
		d.sys.Root.Send(d.pid, &resubscribedMsg{channel: ch, gen: gen})
	}
}

func (a *clientActor) resubscribeConfirmed(m *resubscribedMsg) {
	if a.d.extra == nil || a.d.extra.seq == nil || m.gen != a.gen {
		return
	}
	if st := a.d.extra.seq.chans[m.channel]; st != nil && st.state == seqResubscribing {
		st.confirmed = true
	}
	if fs := a.d.extra.seq.fresh[m.channel]; fs != nil {
		fs.confirmed(time.Now())
	}
}

// fetchSnapshot runs the user's snapshot fetch off the actor.
func (a *clientActor) fetchSnapshot(ch string, token, gen uint64) {
	d, fn, timeout := a.d, a.cfg.Snapshot, a.cfg.RequestTimeout
	life := a.life
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(life, timeout)
		defer cancel()
		var snap Snapshot
		err := guard("snapshot fetch", func() error {
			var err error
			snap, err = fn(ctx, ch)
			return err
		})
		if !d.isStopped() {
			d.sys.Root.Send(d.pid, &snapshotDone{channel: ch, token: token, gen: gen, snap: snap, err: err})
		}
	}()
}

// snapshotFetched delivers a fetched snapshot and the held updates after
// it, in order.
func (a *clientActor) snapshotFetched(m *snapshotDone) {
	if a.d.extra == nil || a.d.extra.seq == nil {
		return
	}
	st := a.d.extra.seq.chans[m.channel]
	if st == nil || st.state != seqFetching || st.token != m.token {
		return // a fetch given up (a reconnect, a newer resync)
	}
	if m.err == nil && len(m.snap.Data) == 0 {
		m.err = errors.New("it returned no data") // no image to start from
	}
	if m.err != nil {
		a.d.rareCounts().snapshotFailures.Add(1)
		a.d.log.Warn("snapshot fetch failed: the channel stays out of sync and is asked again",
			zap.String("channel", m.channel), zap.Error(a.d.scrub(fmt.Errorf("%w: %w", ErrSnapshot, m.err))))
		st.state = seqLive // the next episode backs off (streak)
		st.ended = time.Now()
		a.startResync(m.channel, st, m.gen)
		return
	}
	held := st.held
	g := a.d.extra.seq
	g.held -= st.heldBytes
	st.held, st.heldBytes = nil, 0
	a.resynced(m.channel, st)
	a.accept(&Inbound{Client: a.self, Kind: KindNotification, Channel: m.channel, Data: m.snap.Data,
		Generation: a.gen, Received: time.Now()}, st, venue.Seq{First: m.snap.Seq, Last: m.snap.Seq, Snapshot: true, Resync: st.mode})
	for i, h := range held {
		if !st.has {
			return // no room in the inbound queue: accept announced it and resyncs; the rest is moot
		}
		switch {
		case h.seq.Last <= st.last && !h.seq.Snapshot:
			a.d.rareCounts().seqDropped.Add(1) // in the snapshot already
		case h.seq.Snapshot || h.seq.Follows(st.last):
			a.accept(h.in, st, h.seq)
		default: // a hole between the snapshot and what was held: again
			a.d.rareCounts().gaps.Add(1)
			a.gap(h.in, st, GapSequence, h.seq.First)
			for _, r := range held[i:] {
				st.hold(r.in, r.seq, a.d, g)
			}
			a.startResync(m.channel, st, m.gen)
			return
		}
	}
}

// checkResyncs starts the resyncs whose backoff is over and starts again
// those that did not complete in time (the guard's tick).
func (a *clientActor) checkResyncs(now time.Time) {
	g := a.d.extra.seq
	limit := min(max(2*a.cfg.RequestTimeout, 100*time.Millisecond), time.Minute)
	for ch, st := range g.chans {
		if st.state != seqLive && !a.d.intent.wants(ch) { // unsubscribed meanwhile
			st.dropHeld(g)
			delete(g.chans, ch)
			a.d.intent.setResyncing(ch, false)
			continue
		}
		switch {
		case st.state == seqWaiting && !now.Before(st.due):
			a.startResync(ch, st, a.gen) // not live: the episode goes on
		case (st.state == seqResubscribing || st.state == seqFetching) && now.Sub(st.started) > limit:
			a.d.log.Warn("a resync did not complete in time: starting it again", zap.String("channel", ch))
			st.state, st.ended = seqLive, now
			a.startResync(ch, st, a.gen)
		}
	}
}

// resyncsPending reports whether a channel is out of sync.
func (g *seqGuard) resyncsPending() bool {
	for _, st := range g.chans {
		if st.state != seqLive {
			return true
		}
	}
	return false
}
