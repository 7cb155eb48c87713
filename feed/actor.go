package feed

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
)

// poolActor owns the pool's state: its clients, its channels and their
// de-duplication.
type poolActor struct {
	p        *Pool
	o        options
	self     *actor.PID
	members  map[string]*member // by PID id
	list     []*member          // in discovery order
	channels map[string]*channel
	waiters  map[*waiter]bool
	unsubs   map[*waiter]bool
	nextOrd  int
	timer    *time.Timer
	// holes: a timer that settles the channels holding updates (holeWait),
	// armed while one does.
	holes     *time.Timer
	holeArmed bool
	ctx       context.Context // ends when the actor stops: the calls on clients
	cancel    context.CancelFunc
	stopping  bool

	// The batches of one message's work, sent when it is done.
	subs, unsubsOut map[*member][]string

	// Totals of the channels removed (Status adds the live ones).
	delivered, duplicates, gaps uint64
	moves, ignored              uint64
}

func newPoolActor(p *Pool) *poolActor {
	ctx, cancel := context.WithCancel(context.Background())
	return &poolActor{p: p, o: p.o, members: map[string]*member{}, channels: map[string]*channel{},
		waiters: map[*waiter]bool{}, unsubs: map[*waiter]bool{}, ctx: ctx, cancel: cancel,
		subs: map[*member][]string{}, unsubsOut: map[*member][]string{}}
}

// Receive implements actor.Actor.
func (a *poolActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Inbound:
		a.inbound(m)
		return // the hot path: no batches to send
	case *actors.HealthUpdate:
		a.health(m)
	case *actor.Started:
		a.self = ctx.Self()
		a.discover(ctx)
		a.schedule()
	case *tick:
		a.discover(ctx)
		a.schedule()
	case *holeTick:
		a.settleHoles()
	case *refreshReq:
		a.discover(ctx)
		m.reply <- struct{}{}
	case *actor.Terminated:
		if mb := a.members[m.Who.Id]; mb != nil {
			a.remove(mb)
		}
	case *subscribeReq:
		m.reply <- a.subscribe(m.channels)
	case *unsubscribeReq:
		m.reply <- a.unsubscribe(m.channels)
	case *cancelWait:
		delete(a.waiters, m.w)
	case *opDone:
		a.done(m)
	case *statusReq:
		m.reply <- a.statusOf()
	case *stopReq:
		a.stopping = true
		for _, ch := range a.channels {
			ch.removed = true
		}
		// The calls in flight end first (a Subscribe on its way is kept as
		// intent by its client, whatever its ctx says): only then do the
		// unsubscribes below remove everything, in that order.
		a.cancel()
		a.p.waitOps(stopWait)
		a.ctx, a.cancel = context.WithCancel(context.Background())
		for _, mb := range a.list {
			for name, cp := range mb.copies {
				cp.going = true
				a.unsubsOut[mb] = append(a.unsubsOut[mb], name)
			}
		}
		a.flush(stopWait)
		m.reply <- struct{}{}
	case *actor.Restarting:
		if a.timer != nil {
			a.timer.Stop() // Started schedules it again
		}
		if a.holes != nil {
			a.holes.Stop()
			a.holeArmed = false
		}
	case *actor.Stopping:
		if a.timer != nil {
			a.timer.Stop()
		}
		if a.holes != nil {
			a.holes.Stop()
		}
		a.cancel()
	}
	a.flush(a.o.timeout)
}

func (a *poolActor) schedule() {
	if a.stopping {
		return
	}
	sys, self := a.p.sys, a.self
	a.timer = time.AfterFunc(a.o.interval, func() { sys.Root.Send(self, &tick{}) })
}

// discover reads the discovery function: new clients join (watched, their
// health pushed at once), clients gone leave.
func (a *poolActor) discover(ctx actor.Context) {
	if a.stopping {
		return
	}
	seen := map[string]bool{}
	for _, pid := range a.listed() {
		if pid == nil || seen[pid.Id] {
			continue
		}
		seen[pid.Id] = true
		if a.members[pid.Id] != nil {
			continue
		}
		c := actors.NewClient(a.p.sys, pid)
		if err := c.WatchHealth(a.self); err != nil {
			continue // not a client (any more)
		}
		ctx.Watch(pid)
		mb := &member{pid: pid, c: c, order: a.nextOrd, copies: map[string]*copyOf{}}
		a.nextOrd++
		a.members[pid.Id] = mb
		a.list = append(a.list, mb)
	}
	for _, mb := range slices.Clone(a.list) {
		if !seen[mb.pid.Id] {
			ctx.Unwatch(mb.pid)
			a.remove(mb)
		}
	}
}

// listed calls the discovery function, containing a panic (the pool
// keeps its clients).
func (a *poolActor) listed() (pids []*actor.PID) {
	defer func() {
		if r := recover(); r != nil {
			a.o.log.Error("feed: the discovery function panicked; the pool keeps its clients", zap.Any("panic", r))
			pids = make([]*actor.PID, 0, len(a.list))
			for _, mb := range a.list {
				pids = append(pids, mb.pid)
			}
		}
	}()
	return a.o.discovery()
}

// remove takes a client out of the pool: its copies move elsewhere.
func (a *poolActor) remove(mb *member) {
	if mb.connected {
		mb.connected = false
		a.event(Event{Kind: EventClientLost, Client: mb.pid})
	}
	delete(a.members, mb.pid.Id)
	a.list = slices.DeleteFunc(a.list, func(x *member) bool { return x == mb })
	var names []string
	for name, cp := range mb.copies {
		ch := cp.owner
		ch.dropCopy(cp)
		ch.lost()
		if !cp.going {
			names = append(names, name)
		}
	}
	mb.copies = map[string]*copyOf{}
	for _, name := range names {
		if ch := a.channels[name]; ch != nil {
			a.replicate(ch)
		}
	}
	a.unsubsOut[mb] = append(a.unsubsOut[mb], names...) // best effort: the client may be gone
}

// health follows a client's connection: a lost one's copies move to the
// others; one back (or new) takes copies back to even the load.
func (a *poolActor) health(u *actors.HealthUpdate) {
	mb := a.members[u.Client.Id]
	if mb == nil || a.stopping {
		return
	}
	connected := u.Health.State == actors.StateConnected
	mb.gen, mb.degraded = u.Health.Generation, u.Health.Degraded
	switch {
	case mb.connected && !connected:
		mb.connected = false
		a.event(Event{Kind: EventClientLost, Client: mb.pid})
		for _, cp := range sortedCopies(mb) {
			cp.owner.lost()
			a.heal(cp.owner)
		}
	case !mb.connected && connected:
		mb.connected = true
		a.event(Event{Kind: EventClientBack, Client: mb.pid})
		a.repair()
		a.rebalance()
	}
}

func sortedCopies(mb *member) []*copyOf {
	out := make([]*copyOf, 0, len(mb.copies))
	for _, cp := range mb.copies {
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].owner.name < out[j].owner.name })
	return out
}

// inbound routes a client's message: a notification of a channel the pool
// holds goes through its de-duplication; anything else is counted.
func (a *poolActor) inbound(in *actors.Inbound) {
	if in.Kind != actors.KindNotification || a.stopping {
		a.ignored++ // a client's own gap notice too: the pool watches its copies itself
		return
	}
	ch := a.channels[in.Channel]
	if ch == nil {
		a.ignored++
		return
	}
	var cp *copyOf
	if in.Client != nil {
		if mb := a.members[in.Client.Id]; mb != nil {
			cp = mb.copies[in.Channel]
			if cp != nil && cp.owner != ch {
				cp = nil // a copy of an earlier holding of the name
			}
		}
	}
	s, ok := a.sequence(in)
	ch.receive(cp, s, ok, in)
	if len(ch.held) > 0 {
		a.armHoles()
	}
}

// holeTick: settle the channels that hold updates.
type holeTick struct{}

// armHoles arms the hole timer, unless it is armed.
func (a *poolActor) armHoles() {
	if a.holeArmed || a.stopping {
		return
	}
	a.holeArmed = true
	sys, self := a.p.sys, a.self
	a.holes = time.AfterFunc(holeWait/2, func() { sys.Root.Send(self, &holeTick{}) })
}

// settleHoles settles every channel holding updates; the timer is armed
// again while one still does.
func (a *poolActor) settleHoles() {
	a.holeArmed = false
	again := false
	for _, ch := range a.channels {
		if len(ch.held) > 0 {
			ch.settle()
			again = again || len(ch.held) > 0
		}
	}
	if again {
		a.armHoles()
	}
}

// sequence reads in's sequence with the pool's Sequencer, containing a
// panic (the frame is then taken as carrying none).
func (a *poolActor) sequence(in *actors.Inbound) (s venue.Seq, ok bool) {
	if a.o.seq == nil {
		return venue.Seq{}, false
	}
	defer func() {
		if recover() != nil {
			s, ok = venue.Seq{}, false
		}
	}()
	s, ok = a.o.seq.Sequence(in.Channel, in.Data)
	s.Snapshot = s.Snapshot || in.Snapshot
	return s, ok
}

// deliver implements sink.
func (a *poolActor) deliver(_ *channel, in *actors.Inbound) {
	out := *in
	a.p.out.inbound(&out)
}

// gap implements sink: a KindGap notice in the channel's stream.
func (a *poolActor) gap(ch *channel, reason actors.GapReason, expected, got uint64) {
	a.p.out.inbound(&actors.Inbound{Kind: actors.KindGap, Channel: ch.name, Received: time.Now(),
		Gap: &actors.Gap{Channel: ch.name, Reason: reason, Expected: expected, Got: got}})
}

func (a *poolActor) event(ev Event) {
	ev.Time = time.Now()
	a.p.out.event(ev)
}

// done applies a client's answer to a subscribe or unsubscribe.
func (a *poolActor) done(d *opDone) {
	if !d.sub {
		for _, name := range d.channels {
			cp := d.m.copies[name]
			if cp == nil || !cp.going {
				continue
			}
			delete(d.m.copies, name)
			ch := cp.owner
			ch.dropCopy(cp)
			ch.lost() // it may have been the last copy delivering
			if a.channels[name] == ch {
				a.heal(ch)
			}
		}
		for w := range a.unsubs {
			for _, name := range d.channels {
				if d.m.copies[name] == nil {
					delete(w.left, d.m.pid.Id+"\x00"+name)
				}
			}
			if w.settle() {
				delete(a.unsubs, w)
			}
		}
		return
	}
	applied := d.channels
	var pe *actors.PartialError
	switch {
	case errors.As(d.err, &pe):
		applied = pe.Applied
	case d.err != nil:
		applied = nil
		if !errors.Is(d.err, context.Canceled) {
			a.o.log.Info("feed: a client has not confirmed channels yet (it keeps them wanted)",
				zap.Stringer("client", d.m.pid), zap.Int("channels", len(d.channels)), zap.Error(d.err))
		}
	}
	for _, name := range applied {
		cp := d.m.copies[name]
		if cp == nil || cp.going {
			continue
		}
		cp.active, cp.err = true, nil
		ch := cp.owner
		// Make before break: the copies this one replaces go now.
		for _, old := range ch.copies {
			if old.leaving && !old.going && ch.wanted() >= a.o.copies {
				a.drop(old)
			}
		}
		for w := range a.waiters {
			delete(w.left, name)
		}
	}
	if d.err != nil && !errors.Is(d.err, actors.ErrTimeout) && !errors.Is(d.err, context.Canceled) {
		// The venue refused (a mistyped channel): the copy stays wanted and
		// its client asks again with backoff, but a Subscribe waiting for
		// it returns the refusal.
		done := make(map[string]bool, len(applied))
		for _, name := range applied {
			done[name] = true
		}
		for _, name := range d.channels {
			if cp := d.m.copies[name]; cp != nil && !done[name] {
				cp.err = d.err
				for w := range a.waiters {
					if w.left[name] {
						delete(w.left, name)
						w.errs = append(w.errs, d.err)
					}
				}
			}
		}
	}
	for w := range a.waiters {
		if w.settle() {
			delete(a.waiters, w)
		}
	}
}

// drop starts removing a copy: unsubscribed on its client, forgotten
// once the client answers.
func (a *poolActor) drop(cp *copyOf) {
	cp.going = true
	a.unsubsOut[cp.m] = append(a.unsubsOut[cp.m], cp.owner.name)
}

// flush sends the batches one message produced: one call per client, on
// a goroutine of its own, each answered with an opDone.
func (a *poolActor) flush(timeout time.Duration) {
	for mb, names := range a.subs {
		a.call(mb, true, names, timeout)
	}
	for mb, names := range a.unsubsOut {
		a.call(mb, false, names, timeout)
	}
	clear(a.subs)
	clear(a.unsubsOut)
}

func (a *poolActor) call(mb *member, sub bool, names []string, timeout time.Duration) {
	if len(names) == 0 {
		return
	}
	a.p.ops.Add(1)
	sys, self, base := a.p.sys, a.self, a.ctx
	a.p.enqueue(mb.pid.Id, func() {
		defer a.p.ops.Done()
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		var err error
		if sub {
			err = mb.c.Subscribe(ctx, names...)
		} else {
			err = mb.c.Unsubscribe(ctx, names...)
		}
		sys.Root.Send(self, &opDone{m: mb, sub: sub, channels: names, err: err})
	})
}
