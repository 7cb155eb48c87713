package balancer

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/pidname"
	"github.com/zenws/zenws/internal/protocol"
	"github.com/zenws/zenws/internal/sysreg"
)

// table is the router's published view: every member, and those a pick
// may choose. It is immutable once published.
type table struct {
	members  []*member
	eligible []*member // may be picked
	healthy  []*member // eligible and not degraded: picked first
}

// candidates is what a pick chooses from: the healthy members not
// excluded, or, when none is left, the degraded ones (a client missing a
// market-data channel can still carry an order).
func (t *table) candidates(excluded []*member) []*member {
	if c := without(t.healthy, excluded); len(c) > 0 {
		return c
	}
	return without(t.eligible, excluded)
}

// shared is what the router actor and its handles share.
type shared struct {
	sys     *actor.ActorSystem
	o       options
	pid     atomic.Pointer[actor.PID]
	table   atomic.Pointer[table]
	stopped chan struct{}
	once    sync.Once

	failovers atomic.Uint64
	noConns   atomic.Uint64
	turn      atomic.Uint64 // HealthScore's ties, in turn
}

func newShared(o options) *shared {
	s := &shared{o: o, stopped: make(chan struct{})}
	s.table.Store(&table{})
	return s
}

// Messages of the router actor.
type (
	rediscover struct{}
	discovered struct{ pids []*actor.PID }
	refreshReq struct{ reply chan struct{} }
	flushWait  struct{ run uint64 }
	republish  struct{} // publish the table if a health push changed it
	invalidate struct{} // Invalidate: the clients changed; a paced run
)

// waiter is a Refresh waiting for discovery run need (the first one that
// starts after its request) to be in the table.
type waiter struct {
	ch   chan struct{}
	need uint64
}

// firstHealthWait bounds how long Refresh waits for the first health push
// of newly discovered clients (documented on Refresh; it only ever makes
// Refresh return sooner than its ctx): a local client pushes at once when
// registered with, so only a stuck or remote one takes longer.
const firstHealthWait = time.Second

// router is the balancer's actor: it owns the table, registers with each
// discovered client for its health pushes, and publishes the table.
type router struct {
	sh      *shared
	self    *actor.PID
	stopTel func()
	members map[string]*member // by PID key
	order   []*member          // the members sorted by key, the table's order: kept, not sorted per publish
	stale   bool               // a health push changed who is eligible since the last publish
	queued  bool               // a republish is in the mailbox
	timer   *time.Timer
	running bool   // a discovery is under way
	again   bool   // another was asked for meanwhile
	run     uint64 // discovery runs started
	done    uint64 // the last run merged into the table
	flushed uint64 // runs whose first-health wait is over
	waiting []waiter
	unknown map[string]bool // PIDs discovery returned that cannot be used (logged once)

	// The pacing of the runs Invalidate asks for (invalidated).
	againP bool          // an Invalidate came during a run: another, paced
	pacer  *time.Timer   // sends the paced run's rediscover
	began  time.Time     // when the current or last run started
	ended  time.Time     // when the last run was merged
	took   time.Duration // how long the last run took
}

func pidKey(p *actor.PID) string { return p.Address + "/" + p.Id }

func (r *router) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if err := r.sh.o.validate(); err != nil {
			r.sh.o.logger.Error("balancer not started", zap.Error(err))
			r.sh.once.Do(func() { close(r.sh.stopped) })
			ctx.Stop(ctx.Self())
			return
		}
		r.self = ctx.Self()
		r.sh.pid.Store(r.self)
		if r.sh.sys == nil { // spawned from Props: the handle comes later, through Of
			r.sh.sys = ctx.ActorSystem()
		}
		r.members = map[string]*member{}
		r.order = nil
		r.unknown = map[string]bool{}
		handles(ctx.ActorSystem()).LoadOrStore(r.self.Id, r.sh)
		r.stopTel = r.sh.startTelemetry(r.self.Id)
		r.discover(ctx)
	case *rediscover:
		r.discover(ctx)
	case *invalidate:
		r.invalidated(ctx)
	case *refreshReq:
		r.waiting = append(r.waiting, waiter{ch: m.reply, need: r.run + 1})
		r.discover(ctx)
	case *discovered:
		r.merge(ctx, m.pids)
	case *actors.HealthUpdate:
		r.update(ctx, m)
		r.replyIfSettled()
	case *republish:
		r.queued = false
		if r.stale {
			r.publish()
		}
	case *flushWait:
		r.flushed = max(r.flushed, m.run)
		r.reply(r.flushed)
	case *actor.Terminated:
		if mb, ok := r.members[pidKey(m.Who)]; ok {
			r.remove(ctx, mb, false)
			r.publish()
		}
		r.discover(ctx)
	case *actor.Restarting:
		// A panic (a user's resolver or discovery): the next instance
		// starts afresh on the same shared state.
		r.release()
	case *actor.Stopping:
		if r.self == nil {
			return // never started (invalid options)
		}
		for _, mb := range r.members {
			r.remove(ctx, mb, true)
		}
		r.publish()
		r.release()
		r.reply(^uint64(0))
	case *actor.Stopped:
		if r.self != nil {
			handles(ctx.ActorSystem()).CompareAndDelete(r.self.Id, r.sh)
		}
		r.sh.once.Do(func() { close(r.sh.stopped) })
	}
}

// release stops what this instance started: its timer and its metrics.
func (r *router) release() {
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.pacer != nil {
		r.pacer.Stop()
	}
	if r.stopTel != nil {
		r.stopTel()
		r.stopTel = nil
	}
}

// discover reads discovery off the actor's goroutine (it may block); one
// run at a time.
func (r *router) discover(ctx actor.Context) {
	if r.running {
		r.again = true
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.pacer != nil {
		r.pacer.Stop() // this run serves the Invalidates it was waiting for
		r.pacer = nil
	}
	r.began = time.Now()
	fn := r.sh.o.discovery
	r.run++
	if fn == nil {
		r.merge(ctx, nil)
		return
	}
	r.running = true
	sys, self := ctx.ActorSystem(), r.self
	go func() {
		var pids []*actor.PID
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.sh.o.logger.Error("discovery panicked", zap.Any("panic", p))
				}
			}()
			pids = fn()
		}()
		sys.Root.Send(self, &discovered{pids: pids})
	}()
}

// merge makes the table match what discovery returned.
func (r *router) merge(ctx actor.Context, pids []*actor.PID) {
	r.running = false
	r.done = r.run
	r.ended = time.Now()
	r.took = r.ended.Sub(r.began)
	seen := make(map[string]bool, len(pids))
	for _, p := range pids {
		if p == nil {
			continue
		}
		k := pidKey(p)
		seen[k] = true
		if _, ok := r.members[k]; ok {
			continue
		}
		ep, remote, ok := r.resolve(ctx, p)
		if !ok {
			if !r.unknown[k] {
				r.unknown[k] = true
				r.sh.o.logger.Info("discovery returned a PID that is not a usable client; skipped", pidname.Field("pid", p))
			}
			continue
		}
		delete(r.unknown, k)
		mb := newMember(p, ep, remote)
		r.members[k] = mb
		i, _ := slices.BinarySearchFunc(r.order, k, byKey)
		r.order = slices.Insert(r.order, i, mb)
		if w, ok := ep.(Watcher); ok {
			w.WatchHealth(r.self)
		} else {
			ctx.Watch(p)
			ctx.Send(p, &protocol.WatchHealth{Watcher: r.self})
		}
	}
	for k, mb := range r.members {
		if !seen[k] {
			r.remove(ctx, mb, true)
		}
	}
	for k := range r.unknown {
		if !seen[k] {
			delete(r.unknown, k)
		}
	}
	r.publish()
	if len(r.waiting) > 0 {
		if r.settled() {
			r.reply(r.done)
		} else {
			sys, self, run := ctx.ActorSystem(), r.self, r.done
			time.AfterFunc(firstHealthWait, func() { sys.Root.Send(self, &flushWait{run: run}) })
		}
	}
	if r.again {
		r.again, r.againP = false, false
		r.discover(ctx)
		return
	}
	if r.againP {
		r.againP = false
		r.invalidated(ctx)
		if r.pacer != nil || r.running {
			return // the next run sets the interval's timer after it
		}
	}
	sys, self := ctx.ActorSystem(), r.self
	r.timer = time.AfterFunc(r.sh.o.interval, func() { sys.Root.Send(self, &rediscover{}) })
}

// invalidatePace: after a run, the next one an Invalidate asks for waits
// until this many of the last run's durations have passed since it ended.
const invalidatePace = 10

// invalidated starts the run an Invalidate asks for: at once, unless the
// last run ended less than invalidatePace of its durations ago; then when
// that time is up, one run for every Invalidate meanwhile. A supervisor
// invalidates on every client that starts or stops, and a run reads and
// merges the whole list: unpaced, back-to-back runs kept the router busy
// while thousands of clients started (n runs of n). With a few clients a
// run takes microseconds, so nothing waits; at 10,000 a few milliseconds,
// so the router spends about a tenth of its time on discovery. Refresh, a
// watched client's stop and the interval are not paced.
func (r *router) invalidated(ctx actor.Context) {
	if r.running {
		r.againP = true
		return
	}
	if r.pacer != nil {
		return // a paced run is on its way
	}
	wait := time.Until(r.ended.Add(invalidatePace * r.took))
	if wait <= 0 {
		r.discover(ctx)
		return
	}
	sys, self := ctx.ActorSystem(), r.self
	r.pacer = time.AfterFunc(wait, func() { sys.Root.Send(self, &rediscover{}) })
}

// resolve finds the endpoint of a discovered PID: a local client, or
// through the resolver.
func (r *router) resolve(ctx actor.Context, p *actor.PID) (Endpoint, bool, bool) {
	sys := ctx.ActorSystem()
	if p.Address == sys.Address() || p.Address == "nonhost" || p.Address == "" {
		if c := actors.NewClient(sys, p); c.Done() != nil { // a zenws client
			select {
			case <-c.Done():
				return nil, false, false // stopped for good
			default:
			}
			return c, false, true
		}
	}
	if r.sh.o.resolve != nil {
		if ep, ok := r.safeResolve(p); ok {
			return ep, true, true
		}
	}
	return nil, false, false
}

// safeResolve calls the user's resolver; a panic in it skips the PID.
func (r *router) safeResolve(p *actor.PID) (ep Endpoint, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			r.sh.o.logger.Error("resolver panicked; PID skipped", pidname.Field("pid", p), zap.Any("panic", v))
			ep, ok = nil, false
		}
	}()
	return r.sh.o.resolve(p)
}

// settled: every member has pushed its health at least once.
func (r *router) settled() bool {
	for _, mb := range r.members {
		if mb.health.Load() == nil {
			return false
		}
	}
	return true
}

func (r *router) replyIfSettled() {
	if len(r.waiting) > 0 && r.settled() {
		r.reply(r.done)
	}
}

// reply answers every Refresh waiting for a run up to upTo.
func (r *router) reply(upTo uint64) {
	if r.stale && len(r.waiting) > 0 {
		r.publish() // a Refresh that returns sees every push it waited for
	}
	kept := r.waiting[:0]
	for _, w := range r.waiting {
		if w.need <= upTo {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	r.waiting = kept
}

func (r *router) remove(ctx actor.Context, mb *member, unwatch bool) {
	delete(r.members, mb.key)
	if i, found := slices.BinarySearchFunc(r.order, mb.key, byKey); found {
		r.order = slices.Delete(r.order, i, i+1)
	}
	if unwatch {
		if w, ok := mb.ep.(Watcher); ok {
			w.UnwatchHealth(r.self)
		} else {
			ctx.Unwatch(mb.pid)
			ctx.Send(mb.pid, &protocol.UnwatchHealth{Watcher: r.self})
		}
	}
}

// update takes a member's health push. A change of who is eligible or
// degraded is published once the pushes already in the mailbox are taken
// too (a republish queued behind them), not once per push: when thousands
// of clients connect or drop together, a publish per push (a copy of the
// whole table each) made n pushes cost n².
func (r *router) update(ctx actor.Context, m *actors.HealthUpdate) {
	if m.Client == nil {
		return
	}
	mb, ok := r.members[pidKey(m.Client)]
	if !ok {
		return
	}
	h := m.Health
	old := mb.health.Swap(&h)
	if eligible(old) != eligible(&h) || degraded(old) != degraded(&h) {
		r.stale = true
		if !r.queued {
			r.queued = true
			ctx.Send(r.self, &republish{})
		}
	}
}

// byKey orders members by PID key.
func byKey(mb *member, key string) int { return strings.Compare(mb.key, key) }

// publish stores a fresh table: members in a stable order (so tests and
// PoolHealth read the same order), the eligible ones apart. It runs on
// every change of a member's eligibility, so it copies the kept order
// instead of sorting (a sort per publish, with two keys built per
// comparison, was a third of the CPU while 10,000 clients started under a
// supervisor's balancer).
func (r *router) publish() {
	r.stale = false
	t := &table{members: slices.Clone(r.order)}
	for _, mb := range t.members {
		if h := mb.health.Load(); eligible(h) {
			t.eligible = append(t.eligible, mb)
			if !degraded(h) {
				t.healthy = append(t.healthy, mb)
			}
		}
	}
	r.sh.table.Store(t)
}

// handles is the actor system's registry through which Of finds the
// shared state of a router spawned with Props (the producer closure holds
// it; only a handle made from a bare PID needs the registry).
func handles(sys *actor.ActorSystem) *sysreg.Registry[*shared] {
	return sysreg.For[*shared](sys, "zenws/balancer/routers")
}
