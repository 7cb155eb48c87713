package feed

import (
	"slices"
	"sort"
)

// The placement rules: a channel's copies are on distinct clients; a
// client holds at most MaxStreams copies (those being moved away count
// until their unsubscribe is confirmed); a new copy goes to a connected
// client before one that is not, to the least loaded first, ties in
// discovery order.

// room reports whether mb can take one more copy.
func (a *poolActor) room(mb *member) bool {
	return a.o.maxStreams <= 0 || len(mb.copies) < a.o.maxStreams
}

// candidates lists the clients that can take a copy of ch, best first.
func (a *poolActor) candidates(ch *channel, connectedOnly bool) []*member {
	var out []*member
	for _, mb := range a.list {
		if mb.copies[ch.name] != nil || !a.room(mb) || (connectedOnly && !mb.connected) {
			continue
		}
		out = append(out, mb)
	}
	sort.SliceStable(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.connected != y.connected {
			return x.connected
		}
		if lx, ly := x.load(), y.load(); lx != ly {
			return lx < ly
		}
		return x.order < y.order
	})
	return out
}

// place adds a copy of ch on mb and queues its subscribe.
func (a *poolActor) place(ch *channel, mb *member) *copyOf {
	cp := ch.addCopy(mb)
	if cp == nil {
		return nil
	}
	mb.copies[ch.name] = cp
	a.subs[mb] = append(a.subs[mb], ch.name)
	return cp
}

// replicate gives ch copies up to WithCopies, on connected clients when
// there are: it reports whether ch has at least one copy.
func (a *poolActor) replicate(ch *channel) bool {
	need := a.o.copies - ch.wanted()
	if need > 0 {
		for _, mb := range a.candidates(ch, false) {
			if need == 0 {
				break
			}
			if a.place(ch, mb) == nil {
				break
			}
			need--
			if ch.delivered > 0 || ch.wanted() > 1 {
				a.event(Event{Kind: EventPlaced, Channel: ch.name, To: mb.pid})
			}
		}
	}
	return ch.wanted() > 0
}

// capacity is how many copies the clients can hold (-1: no limit), and how
// many they hold.
func (a *poolActor) capacity() (held, capacity int) {
	for _, mb := range a.list {
		held += len(mb.copies)
	}
	if a.o.maxStreams <= 0 {
		return held, -1
	}
	return held, a.o.maxStreams * len(a.list)
}

// subscribe places new channels.
func (a *poolActor) subscribe(names []string) subscribed {
	if a.stopping {
		return subscribed{err: ErrStopped}
	}
	w := newWaiter()
	var notPlaced []string
	reason := ""
	for _, name := range dedupe(names) {
		if a.channels[name] != nil {
			continue
		}
		if len(a.channels) >= a.o.maxChannels {
			notPlaced, reason = append(notPlaced, name), "the pool holds WithMaxChannels channels"
			continue
		}
		ch := &channel{name: name, out: a, window: a.o.window}
		a.channels[name] = ch
		if !a.replicate(ch) {
			delete(a.channels, name)
			notPlaced = append(notPlaced, name)
			if reason == "" {
				reason = "no client has room"
			}
			continue
		}
		w.left[name] = true
	}
	res := subscribed{}
	if len(notPlaced) > 0 {
		held, capacity := a.capacity()
		res.err = &CapacityError{NotPlaced: notPlaced, Streams: held, Capacity: capacity, Reason: reason}
	}
	if !w.settle() {
		a.waiters[w] = true
		res.wait = w
	}
	return res
}

// unsubscribe removes channels: their copies are unsubscribed on their
// clients; the waiter returned ends when every client has answered.
func (a *poolActor) unsubscribe(names []string) *waiter {
	w := newWaiter()
	for _, name := range dedupe(names) {
		ch := a.channels[name]
		if ch == nil {
			continue
		}
		delete(a.channels, name)
		ch.removed = true
		a.delivered += ch.delivered
		a.duplicates += ch.duplicates
		a.gaps += ch.gaps
		for _, cp := range ch.copies {
			if !cp.going {
				a.drop(cp)
			}
			w.left[cp.m.pid.Id+"\x00"+name] = true
		}
		for x := range a.waiters {
			delete(x.left, name)
			if x.settle() {
				delete(a.waiters, x)
			}
		}
	}
	if !w.settle() {
		a.unsubs[w] = true
	}
	return w
}

// moveAway moves the copy cp of a lost client to a connected client with
// room, if there is one (else it stays: its client restores it when it
// reconnects). The old copy goes once the new one is confirmed.
func (a *poolActor) moveAway(ch *channel, cp *copyOf) {
	c := a.candidates(ch, true)
	if len(c) == 0 {
		return
	}
	if a.place(ch, c[0]) == nil {
		return
	}
	cp.leaving = true
	ch.moves++
	a.moves++
	a.event(Event{Kind: EventMoved, Channel: ch.name, From: cp.m.pid, To: c[0].pid})
}

// heal moves the copies of ch that are on lost clients to connected ones
// with room, where there are.
func (a *poolActor) heal(ch *channel) {
	for _, cp := range slices.Clone(ch.copies) {
		if !cp.m.connected && !cp.going && !cp.leaving {
			a.moveAway(ch, cp)
		}
	}
}

// repair gives every channel with fewer copies than WithCopies the copies
// it lacks.
func (a *poolActor) repair() {
	for _, ch := range a.sortedChannels() {
		if ch.wanted() < a.o.copies {
			a.replicate(ch)
		}
	}
}

// rebalance moves copies from the most loaded connected clients to the
// least loaded until no two differ by more than one: what brings channels
// back onto a client that returns (or joins). Each move subscribes the
// new copy first and drops the old one when the venue confirmed it.
func (a *poolActor) rebalance() {
	var conn []*member
	for _, mb := range a.list {
		if mb.connected {
			conn = append(conn, mb)
		}
	}
	if len(conn) < 2 {
		return
	}
	for {
		sort.SliceStable(conn, func(i, j int) bool { return conn[i].load() < conn[j].load() })
		lo, hi := conn[0], conn[len(conn)-1]
		if hi.load()-lo.load() <= 1 || !a.room(lo) {
			return
		}
		cp := a.movable(hi, lo)
		if cp == nil {
			return
		}
		ch := cp.owner
		if a.place(ch, lo) == nil {
			return
		}
		cp.leaving = true
		ch.moves++
		a.moves++
		a.event(Event{Kind: EventMoved, Channel: ch.name, From: hi.pid, To: lo.pid})
	}
}

// movable picks a copy on from that can move to to: settled, of a channel
// to does not hold, the first by name.
func (a *poolActor) movable(from, to *member) *copyOf {
	var best *copyOf
	for name, cp := range from.copies {
		if cp.going || cp.leaving || !cp.active || to.copies[name] != nil {
			continue
		}
		if best == nil || name < best.owner.name {
			best = cp
		}
	}
	return best
}

func (a *poolActor) sortedChannels() []*channel {
	out := make([]*channel, 0, len(a.channels))
	for _, ch := range a.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// dedupe returns names without repeats or empty names, in their order.
func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

var _ sink = (*poolActor)(nil)
