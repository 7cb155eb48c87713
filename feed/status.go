package feed

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// ErrCapacity is what a *CapacityError matches with errors.Is.
var ErrCapacity = errors.New("zenws/feed: the pool cannot hold the channels")

// ErrStopped: the pool was stopped.
var ErrStopped = errors.New("zenws/feed: stopped")

// CapacityError is a Subscribe the pool could not place whole: NotPlaced
// found no client with room (every client holds its MaxStreams, or the
// pool holds WithMaxChannels channels); they are not wanted. The others
// were placed. Streams is how many copies the pool holds now, Capacity how
// many its clients can hold (-1: no limit).
type CapacityError struct {
	NotPlaced []string
	Streams   int
	Capacity  int
	Reason    string
}

// Error names at most 10 of the channels not placed.
func (e *CapacityError) Error() string {
	names := e.NotPlaced
	more := ""
	if len(names) > 10 {
		names, more = names[:10], fmt.Sprintf(" and %d more", len(e.NotPlaced)-10)
	}
	return fmt.Sprintf("zenws/feed: %d channels not placed (%s%s): %s (%d streams held, capacity %d)",
		len(e.NotPlaced), strings.Join(names, ", "), more, e.Reason, e.Streams, e.Capacity)
}

// Is makes errors.Is(err, ErrCapacity) true.
func (e *CapacityError) Is(target error) bool { return target == ErrCapacity }

// Status is the pool as its actor sees it: which channels are on which
// client, and what the de-duplication did.
type Status struct {
	Copies     int // WithCopies
	MaxStreams int // per client; 0: no limit
	Clients    []ClientStatus
	Channels   []ChannelStatus // sorted by name

	Delivered  uint64 // updates delivered, once each
	Duplicates uint64 // updates dropped: another copy had brought them
	Gaps       uint64 // gap notices delivered
	Moves      uint64 // copies moved to another client
	Dropped    uint64 // deliveries the full queue dropped (WithQueue)
	Ignored    uint64 // notifications of channels the pool does not hold, and other frames
}

// ClientStatus is one client of the pool.
type ClientStatus struct {
	Client     *actor.PID
	Connected  bool
	Generation uint64 // its connection generation, as last pushed
	// Streams is how many channel copies it holds (those being moved away
	// included, until their unsubscribe is confirmed).
	Streams  int
	Channels []string // sorted
}

// ChannelStatus is one channel of the pool.
type ChannelStatus struct {
	Channel string
	Clients []*actor.PID // where its copies are
	Copies  int          // copies that stay (not being removed)
	Live    int          // copies on a connected client
	// Active counts the copies the client confirmed, on a client that is
	// connected with every wanted channel active (not restoring them).
	Active int
	// UnderReplicated: fewer copies than WithCopies (not enough clients
	// with room); the pool adds copies when a client joins or returns.
	UnderReplicated bool
	Held            int   // updates held out of order, waiting for a copy to fill a hole
	Err             error // a venue's refusal of a copy's subscribe (its client asks again with backoff)

	Delivered, Duplicates, Gaps, Moves uint64
}

// Channel finds one channel's status.
func (s Status) Channel(name string) (ChannelStatus, bool) {
	i := sort.Search(len(s.Channels), func(i int) bool { return s.Channels[i].Channel >= name })
	if i < len(s.Channels) && s.Channels[i].Channel == name {
		return s.Channels[i], true
	}
	return ChannelStatus{}, false
}

// EventKind says what an Event tells.
type EventKind int

// Event kinds.
const (
	// EventClientLost: a client left StateConnected (or the pool); its
	// copies move to other clients with room.
	EventClientLost EventKind = iota + 1
	// EventClientBack: a client is connected (again, or for the first
	// time); copies move onto it to even the load.
	EventClientBack
	// EventMoved: a copy of Channel moves From one client To another; the
	// new copy is subscribed before the old one is dropped.
	EventMoved
	// EventPlaced: a copy of Channel was added on To (a channel that had
	// fewer copies than WithCopies).
	EventPlaced
)

// String returns the name used in logs.
func (k EventKind) String() string {
	switch k {
	case EventClientLost:
		return "client lost"
	case EventClientBack:
		return "client back"
	case EventMoved:
		return "moved"
	case EventPlaced:
		return "placed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something the pool did or saw (WithObserver, WithSubscriber).
type Event struct {
	Kind     EventKind
	Channel  string
	Client   *actor.PID // EventClientLost, EventClientBack
	From, To *actor.PID // EventMoved (From), EventMoved and EventPlaced (To)
	Time     time.Time
}

// statusOf builds the Status, with its lists sorted.
func (a *poolActor) statusOf() Status {
	s := Status{Copies: a.o.copies, MaxStreams: a.o.maxStreams, Moves: a.moves, Ignored: a.ignored, Dropped: a.p.out.dropped.Load()}
	for _, m := range a.list {
		cs := ClientStatus{Client: m.pid, Connected: m.connected, Generation: m.gen, Streams: len(m.copies)}
		for name := range m.copies {
			cs.Channels = append(cs.Channels, name)
		}
		sort.Strings(cs.Channels)
		s.Clients = append(s.Clients, cs)
	}
	for _, ch := range a.channels {
		st := ChannelStatus{Channel: ch.name, Copies: ch.wanted(), Live: ch.liveCopies(), Held: len(ch.held),
			Delivered: ch.delivered, Duplicates: ch.duplicates, Gaps: ch.gaps, Moves: ch.moves}
		for _, cp := range ch.copies {
			st.Clients = append(st.Clients, cp.m.pid)
			if cp.err != nil {
				st.Err = cp.err
			}
			if cp.active && cp.m.connected && !cp.m.degraded {
				st.Active++
			}
		}
		st.UnderReplicated = st.Copies < a.o.copies
		s.Channels = append(s.Channels, st)
		s.Delivered, s.Duplicates, s.Gaps = s.Delivered+ch.delivered, s.Duplicates+ch.duplicates, s.Gaps+ch.gaps
	}
	// The totals: the channels held now, and those unsubscribed before.
	s.Delivered, s.Duplicates, s.Gaps = s.Delivered+a.delivered, s.Duplicates+a.duplicates, s.Gaps+a.gaps
	sort.Slice(s.Channels, func(i, j int) bool { return s.Channels[i].Channel < s.Channels[j].Channel })
	return s
}
