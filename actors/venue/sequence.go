package venue

import (
	"strconv"

	"github.com/zenws/zenws/actors/jsonrpc"
)

// Sequencer is a Venue (or a user's rule, actors.WithSequencer) that reads
// the sequence numbers a channel's notifications carry, so that the client
// sees a gap: an order book's updates (Deribit book.*: change_id and
// prev_change_id; Binance diff depth: U and u, futures pu). Sequence sees
// every notification the client delivers, on the client's actor: it must
// be fast, must not keep data, and must not panic (a panic is recovered
// and the frame taken as carrying no sequence).
type Sequencer interface {
	// Sequence reads one notification of channel; ok false: the channel
	// (or this frame) carries no sequence, and the client checks nothing.
	Sequence(channel string, data []byte) (s Seq, ok bool)
}

// Seq is what one update says of its place in its channel's sequence.
type Seq struct {
	// First and Last are the update's range (Binance: U and u; Deribit:
	// both change_id). Last >= First.
	First, Last uint64
	// Prev, with HasPrev, names the update this one follows (Deribit:
	// prev_change_id; Binance futures: pu): in sync when Prev is the Last
	// of the update before. Without it an update is in sync when its range
	// holds the number after the last one's Last (First <= last+1 <= Last).
	Prev    uint64
	HasPrev bool
	// Snapshot: a full image (Deribit's first book message after a
	// subscribe): it starts the sequence again, whatever came before.
	Snapshot bool
	// Resync is how the channel is put back in sync after a break (the
	// latest update's word counts for its channel); the zero value is
	// ResyncRestart.
	Resync ResyncMode
}

// Follows reports whether s continues a sequence whose last update ended
// at last.
func (s Seq) Follows(last uint64) bool {
	if s.Snapshot {
		return true
	}
	if s.HasPrev {
		return s.Prev == last
	}
	return s.First <= last+1 && last+1 <= s.Last
}

// ResyncMode is how a channel out of sync is put back in sync (Seq.Resync).
type ResyncMode int

const (
	// ResyncRestart: the venue sends no snapshots. After a break the
	// client subscribes the channel again, alone, drops its updates until
	// the venue confirmed that, and takes the first update after it as the
	// new start; after a reconnect the first update is the new start.
	ResyncRestart ResyncMode = iota
	// ResyncResubscribe: the venue's first message after a subscribe is a
	// snapshot (Seq.Snapshot): the channel starts from a snapshot, after a
	// break the client subscribes it again, alone, and drops its updates
	// until the snapshot. Deribit's books.
	ResyncResubscribe
	// ResyncSnapshot: the stream carries deltas only; the client asks the
	// user's snapshot fetch (actors.WithSnapshot) for an image, holds the
	// deltas that arrive meanwhile, and delivers the snapshot and then the
	// held deltas that follow it, in order; the stream starts that way too.
	// Binance's diff depth.
	ResyncSnapshot
)

// String returns "restart", "resubscribe" or "snapshot".
func (m ResyncMode) String() string {
	switch m {
	case ResyncRestart:
		return "restart"
	case ResyncResubscribe:
		return "resubscribe"
	case ResyncSnapshot:
		return "snapshot"
	}
	return "ResyncMode(" + strconv.Itoa(int(m)) + ")"
}

// SequenceField is a generic Sequencer for venues that number a channel's
// messages with one integer field: on channels matching Pattern (see
// Match), the number at Path is the update's sequence, and each update
// must carry the number after the one before. Snapshot, when set, is a
// path whose value true, or the string "snapshot", marks a full image; the
// channel then resyncs with ResyncResubscribe (its first message after a
// subscribe is a snapshot), else with ResyncRestart.
type SequenceField struct {
	Pattern  string
	Path     []string
	Snapshot []string
}

// Sequence implements Sequencer.
func (f SequenceField) Sequence(channel string, data []byte) (Seq, bool) {
	if !Match(f.Pattern, channel) || len(f.Path) == 0 {
		return Seq{}, false
	}
	n, ok := jsonrpc.Uint(Path(data, f.Path...))
	if !ok {
		return Seq{}, false
	}
	s := Seq{First: n, Last: n}
	if len(f.Snapshot) > 0 {
		s.Resync = ResyncResubscribe
		v := Path(data, f.Snapshot...)
		str, _ := jsonrpc.String(v)
		s.Snapshot = string(v) == "true" || str == "snapshot"
	}
	return s, true
}

// Sequencers is several Sequencers: the first that reads a frame wins; nil
// entries are skipped.
type Sequencers []Sequencer

// Sequence implements Sequencer.
func (ss Sequencers) Sequence(channel string, data []byte) (Seq, bool) {
	for _, s := range ss {
		if s == nil {
			continue
		}
		if seq, ok := s.Sequence(channel, data); ok {
			return seq, true
		}
	}
	return Seq{}, false
}

// Match reports whether channel matches pattern, where '*' matches any run
// of bytes (none included) and every other byte matches itself: "book.*"
// matches "book.BTC-PERPETUAL.100ms", "*@depth*" matches
// "btcusdt@depth@100ms". Its cost is at most the product of the two
// lengths, whatever the pattern.
func Match(pattern, channel string) bool {
	p, c := 0, 0
	star, mark := -1, 0 // the last '*' seen, and where in channel it began
	for c < len(channel) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, c
			p++
		case p < len(pattern) && pattern[p] == channel[c]:
			p++
			c++
		case star >= 0: // let the last '*' take one more byte
			mark++
			p, c = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Path returns the raw JSON value at the object members path of data (nil
// when one is missing): Path(data, "params", "data", "change_id").
func Path(data []byte, path ...string) []byte {
	v := data
	for _, p := range path {
		if v = jsonrpc.Field(v, p); v == nil {
			return nil
		}
	}
	return v
}
