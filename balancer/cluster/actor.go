package cluster

import (
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
	"github.com/zenws/zenws/internal/protocol"
)

// Messages of the agent actor, from inside its node.
type (
	tick       struct{} // read local discovery again, ask members without an agent again
	invalidate struct{} // read local discovery now
	flushTick  struct{} // send batched health changes
	localFound struct { // what local discovery returned
		pids   []*actor.PID
		failed bool // it panicked: keep the list
	}
	watchReq   struct{ client, router *actor.PID }
	unwatchReq struct{ client, router *actor.PID }
	leaveReq   struct{ reply chan struct{} }
)

// agentActor owns all of the agent's mutable state: the local clients it
// offers, its subscribers, and its view of the other members.
type agentActor struct {
	sh   *shared
	self *actor.PID
	sub  *eventstream.Subscription
	tick *time.Timer

	// local side: the clients this node offers
	local        map[string]*localClient // by actor id
	version      uint64                  // of the list, see ClientList
	subs         map[string]*actor.PID   // subscribers by PID key
	dirty        map[string]bool         // health changes not yet sent
	recount      map[string]bool         // pushed since their channels were counted
	flushT       *time.Timer
	leaving      bool
	discovering  bool
	discoverMore bool

	// marker is a child that lives as long as this run of the agent:
	// subscribers watch it (ClientList.IncarnationId), so that the end of
	// an earlier run on this member is never taken for this one's.
	marker *actor.PID

	// remote side: the other members (those in the topology only: a member
	// that leaves it is forgotten, so this stays as large as the cluster)
	nodes    map[string]*remoteNode           // members in the topology, by member id
	left     map[string]time.Time             // members that left the topology (at most maxLeft), by member id
	toldLeft map[string]time.Time             // sender address -> when it was last told NotMember
	draining map[string][]*node               // by incarnation PID key: dropped, watched until it terminates
	watchers map[string]map[string]*actor.PID // remote client PID key -> router PID key -> router
}

type localClient struct {
	pid    *actor.PID
	client *actors.Client     // its handle: channel counts (not in pushes)
	health *wire.ClientHealth // last summary, nil before the first push; never changed once sent (replaced)
}

func (a *agentActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *tick:
		a.discoverLocal(ctx)
		a.retry(ctx)
		if a.discovering {
			// The next tick comes after discovery returns (mergeLocal); a
			// discovery that does not return must not stop the pings and
			// asks: tick on meanwhile.
			a.schedule(ctx)
		}
	case *invalidate:
		a.discoverLocal(ctx)
	case *localFound:
		a.mergeLocal(ctx, m)
	case *actors.HealthUpdate:
		a.localHealth(ctx, m)
	case *flushTick:
		a.flushT = nil
		a.flush(ctx)
	case *wire.Subscribe:
		a.tellIfLeft(ctx, m.GetMemberId())
		a.subscribe(ctx)
		a.subscribedBy(ctx, m.GetMemberId())
	case *wire.Op:
		a.serve(ctx, m)
	case *wire.Ping:
		a.tellIfLeft(ctx, m.GetMemberId())
		if ctx.Sender() != nil {
			ctx.Respond(&wire.Pong{MemberId: a.sh.memberID, Nonce: m.GetNonce()})
		}
	case *wire.NotMember:
		a.notMember(ctx, m)
	case *wire.Pong:
		a.pong(ctx, m)
	case *leaveReq:
		a.leave(ctx)
		close(m.reply)

	case *protocluster.ClusterTopology:
		a.topology(ctx, m.GetMembers(), m.GetLeft())
	case *wire.HealthBatch:
		a.remoteHealth(ctx, m)
	case *wire.Leaving:
		if rn, ok := a.nodeFor(ctx, m.GetMemberId()); ok {
			a.remoteLeaving(ctx, rn.id)
		}
	case *watchReq:
		a.watch(ctx, m.client, m.router)
	case *unwatchReq:
		if ws := a.watchers[pidKey(m.client)]; ws != nil {
			delete(ws, pidKey(m.router))
		}

	case *actor.Terminated:
		a.terminated(ctx, m)
	case *actor.Restarting:
		a.shutdown(ctx)
	case *actor.Stopping:
		a.shutdown(ctx)
	case *actor.Stopped:
		a.sh.once.Do(func() { close(a.sh.stopped) })
	}
}

func (a *agentActor) start(ctx actor.Context) {
	a.self = ctx.Self()
	a.local = map[string]*localClient{}
	a.subs = map[string]*actor.PID{}
	a.dirty = map[string]bool{}
	a.recount = map[string]bool{}
	a.nodes = map[string]*remoteNode{}
	a.left = map[string]time.Time{}
	a.toldLeft = map[string]time.Time{}
	a.draining = map[string][]*node{}
	a.watchers = map[string]map[string]*actor.PID{}
	a.version = uint64(time.Now().UnixNano())
	marker, err := ctx.SpawnNamed(actor.PropsFromFunc(func(actor.Context) {}), "run-"+strconv.FormatUint(a.version, 36))
	if err != nil { // a name made of the start time in ns: taken only by a clock that went back
		marker = ctx.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	}
	a.marker = marker

	// The event stream runs subscribers on the publisher's goroutine: this
	// one only forwards.
	sys, self := ctx.ActorSystem(), a.self
	a.sub = sys.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*protocluster.ClusterTopology); ok {
			sys.Root.Send(self, t)
		}
	})
	// The members as of now; later changes come as events. (MemberList
	// hands out its set without a lock: it is read once, here, unless
	// WithMembers says where else to read them.)
	if fn := a.sh.o.members; fn != nil {
		a.topology(ctx, fn(), nil)
	} else {
		a.topology(ctx, a.sh.c.MemberList.Members().Members(), nil)
	}
	a.discoverLocal(ctx)
	a.schedule(ctx)
}

// schedule arms the next tick.
func (a *agentActor) schedule(ctx actor.Context) {
	if a.tick != nil {
		a.tick.Stop()
	}
	sys, self, stopped := ctx.ActorSystem(), a.self, a.sh.stopped
	a.tick = time.AfterFunc(a.sh.o.sync, func() {
		select {
		case <-stopped:
		default:
			sys.Root.Send(self, &tick{})
		}
	})
}

// goBackground runs fn off the actor's goroutine, recovering a panic (a
// user's discovery function), and counts it so Stop can wait for it.
func (a *agentActor) goBackground(what string, fn func()) {
	a.sh.bg.Add(1)
	go func() {
		defer a.sh.bg.Done()
		defer func() {
			if p := recover(); p != nil {
				a.sh.o.logger.Error(what+" panicked", zap.Any("panic", p))
			}
		}()
		fn()
	}()
}

// shutdown, on Stopping or Restarting: routers on this node drop the
// remote clients; the view empties.
func (a *agentActor) shutdown(ctx actor.Context) {
	if a.sub != nil {
		ctx.ActorSystem().EventStream.Unsubscribe(a.sub)
		a.sub = nil
	}
	if a.tick != nil {
		a.tick.Stop()
	}
	if a.flushT != nil {
		a.flushT.Stop()
		a.flushT = nil
	}
	for _, lc := range a.local {
		ctx.Send(lc.pid, &protocol.UnwatchHealth{Watcher: a.self})
	}
	for id := range a.nodes {
		a.dropNode(ctx, id, false)
	}
	a.sh.view.Store(&view{})
}

// terminated: a local client, a subscriber, another member's agent or a
// router on this node has stopped (or its address has).
func (a *agentActor) terminated(ctx actor.Context, m *actor.Terminated) {
	k := pidKey(m.Who)
	if _, ok := a.local[m.Who.Id]; ok && isLocal(ctx.ActorSystem(), m.Who) {
		delete(a.local, m.Who.Id)
		delete(a.dirty, m.Who.Id)
		delete(a.recount, m.Who.Id)
		a.publishList(ctx)
		return
	}
	// Another member's agent is usually both a subscriber and watched.
	_, sub := a.subs[k]
	delete(a.subs, k)
	if sub {
		// It watched this agent; it is gone, so forget that watch, or
		// stopping would dial its address (maybe dead) to tell it.
		if p, ok := ctx.ActorSystem().ProcessRegistry.Get(a.self); ok {
			p.SendSystemMessage(a.self, &actor.Unwatch{Watcher: m.Who})
		}
	}
	if a.agentTerminated(ctx, m) || sub {
		return
	}
	for _, ws := range a.watchers {
		delete(ws, k)
	}
}
