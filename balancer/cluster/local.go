package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
	"github.com/zenws/zenws/internal/protocol"
)

// The local side: the clients this node offers to the others.

// discoverLocal reads the local discovery off the actor's goroutine; one
// read at a time.
func (a *agentActor) discoverLocal(ctx actor.Context) {
	if a.discovering {
		a.discoverMore = true
		return
	}
	fn := a.sh.discover
	if fn == nil {
		return
	}
	a.discovering = true
	sys, self := ctx.ActorSystem(), a.self
	a.goBackground("discovery", func() {
		res := &localFound{failed: true}
		defer func() { sys.Root.Send(self, res) }()
		res.pids = fn()
		res.failed = false
	})
}

// isLocal: pid names an actor of this actor system.
func isLocal(sys *actor.ActorSystem, pid *actor.PID) bool {
	return pid.Address == sys.Address() || pid.Address == "nonhost" || pid.Address == ""
}

// mergeLocal makes the offered clients match what discovery returned: a
// new client is watched (its stop, and its health), one that is no longer
// listed is let go.
func (a *agentActor) mergeLocal(ctx actor.Context, found *localFound) {
	a.discovering = false
	if found.failed {
		a.schedule(ctx)
		return
	}
	pids := found.pids
	sys := ctx.ActorSystem()
	seen := make(map[string]bool, len(pids))
	changed := false
	for _, p := range pids {
		if p == nil || !isLocal(sys, p) {
			continue
		}
		c := actors.NewClient(sys, p)
		if c.Done() == nil {
			continue // not a zenws client
		}
		select {
		case <-c.Done():
			continue // stopped for good
		default:
		}
		seen[p.Id] = true
		if _, ok := a.local[p.Id]; ok {
			continue
		}
		pid := sys.NewLocalPID(p.Id) // the address other nodes reach it at
		a.local[p.Id] = &localClient{pid: pid, client: c}
		ctx.Watch(pid)
		ctx.Send(pid, &protocol.WatchHealth{Watcher: a.self})
		changed = true
	}
	for id, lc := range a.local {
		if !seen[id] {
			ctx.Unwatch(lc.pid)
			ctx.Send(lc.pid, &protocol.UnwatchHealth{Watcher: a.self})
			delete(a.local, id)
			delete(a.dirty, id)
			delete(a.recount, id)
			changed = true
		}
	}
	if changed {
		a.publishList(ctx)
	}
	if a.discoverMore {
		a.discoverMore = false
		a.discoverLocal(ctx)
		return
	}
	a.schedule(ctx)
}

// list is the ClientList of this node now.
func (a *agentActor) list(ctx actor.Context) *wire.ClientList {
	l := &wire.ClientList{
		MemberId: a.sh.memberID,
		Address:  ctx.ActorSystem().Address(),
		AgentId:  a.self.Id,
		Version:  a.version,
		Leaving:  a.leaving,

		IncarnationId: a.marker.Id,
	}
	if !a.leaving {
		for id := range a.local {
			l.ClientIds = append(l.ClientIds, id)
		}
	}
	return l
}

// publishList gives the list a new version and sends it to the
// subscribers, with the pending health changes.
func (a *agentActor) publishList(ctx actor.Context) {
	a.version++
	l := a.list(ctx)
	health := a.takeDirty()
	for _, s := range a.subs {
		a.sendBatches(ctx, s, l, health)
	}
}

// maxBatchHealth bounds the summaries in one HealthBatch: at most about
// 2.4 KiB each (their strings clipped), so a batch stays under
// MaxWireMessage, and a batch of EndpointBatch of them under gRPC's
// MaxRemoteMessage, however many clients a node has.
var maxBatchHealth = 1000

// sendBatches sends list (nil: unchanged) and health to a subscriber, in
// batches of at most maxBatchHealth summaries, the list in the first.
func (a *agentActor) sendBatches(ctx actor.Context, to *actor.PID, list *wire.ClientList, health []*wire.ClientHealth) {
	for first := true; first || len(health) > 0; first = false {
		n := min(len(health), maxBatchHealth)
		b := &wire.HealthBatch{MemberId: a.sh.memberID, Health: health[:n]}
		if first {
			b.List = list
		}
		health = health[n:]
		ctx.Request(to, b) // not Respond: the sender's address names this member (see nodeFor)
	}
}

// takeDirty returns the summaries changed since the last batch, channel
// counts brought up to date first.
func (a *agentActor) takeDirty() []*wire.ClientHealth {
	a.recountChannels()
	var out []*wire.ClientHealth
	for id := range a.dirty {
		if lc, ok := a.local[id]; ok && lc.health != nil {
			out = append(out, lc.health)
		}
	}
	clear(a.dirty)
	if a.flushT != nil {
		a.flushT.Stop()
		a.flushT = nil
	}
	return out
}

// localHealth records a local client's push; a change that may change
// whether it is picked goes out at once, others after FlushInterval. A push
// does not carry the client's channels (a push follows every change of
// one): they are counted at the next flush, at most once per FlushInterval
// however many channels change (recountChannels).
func (a *agentActor) localHealth(ctx actor.Context, m *actors.HealthUpdate) {
	if m.Client == nil || !isLocal(ctx.ActorSystem(), m.Client) {
		return
	}
	lc, ok := a.local[m.Client.Id]
	if !ok {
		return
	}
	var counts *wire.ChannelCounts
	if lc.health == nil {
		counts = channelsOf(lc.client.ChannelCounts())
	} else {
		counts = lc.health.GetChannels()
		a.recount[m.Client.Id] = true
	}
	s := summaryOf(m.Client.Id, m.Health, counts)
	if same(lc.health, s) {
		a.flushLater(ctx)
		return
	}
	now := urgent(lc.health, s)
	lc.health = s
	a.dirty[m.Client.Id] = true
	if now {
		a.flush(ctx)
		return
	}
	a.flushLater(ctx)
}

// flushLater makes sure a flush comes within FlushInterval.
func (a *agentActor) flushLater(ctx actor.Context) {
	if a.flushT != nil {
		return
	}
	sys, self, stopped := ctx.ActorSystem(), a.self, a.sh.stopped
	a.flushT = time.AfterFunc(a.sh.o.flush, func() {
		select {
		case <-stopped:
		default:
			sys.Root.Send(self, &flushTick{})
		}
	})
}

// recountChannels counts the channels of the clients that pushed since
// their last count; a changed count makes their summary dirty. A client's
// count is kept until its channels change, so this costs a scan only for
// those whose channels did.
func (a *agentActor) recountChannels() {
	for id := range a.recount {
		lc, ok := a.local[id]
		if !ok || lc.health == nil {
			continue
		}
		c := channelsOf(lc.client.ChannelCounts())
		if sameCounts(c, lc.health.GetChannels()) {
			continue
		}
		s := proto.Clone(lc.health).(*wire.ClientHealth) // the old one may still be on its way
		s.Channels = c
		lc.health = s
		a.dirty[id] = true
	}
	clear(a.recount)
}

// flush sends the batched health changes to every subscriber.
func (a *agentActor) flush(ctx actor.Context) {
	health := a.takeDirty()
	if len(health) == 0 || len(a.subs) == 0 {
		return
	}
	for _, s := range a.subs {
		a.sendBatches(ctx, s, nil, health)
	}
}

// subscribe registers the sender (another member's agent) for health
// batches, watches it, and answers with the full list and health.
func (a *agentActor) subscribe(ctx actor.Context) {
	s := ctx.Sender()
	if s == nil || !a.isMemberAddress(s.Address) {
		return // not a member of the topology (yet: a joining one asks again)
	}
	a.subs[pidKey(s)] = s
	ctx.Watch(s)
	var health []*wire.ClientHealth
	for _, lc := range a.local {
		if lc.health != nil {
			health = append(health, lc.health)
		}
	}
	a.sendBatches(ctx, s, a.list(ctx), health)
}

// leave: tell the subscribers that this node is leaving; operations
// still arriving are refused with ErrClosed (retried elsewhere).
func (a *agentActor) leave(ctx actor.Context) {
	if a.leaving {
		return
	}
	a.leaving = true
	for _, s := range a.subs {
		ctx.Request(s, &wire.Leaving{MemberId: a.sh.memberID})
	}
}

// serve runs an operation another node sent on one of the local clients,
// in a goroutine (a request may wait long), and answers the sender.
func (a *agentActor) serve(ctx actor.Context, op *wire.Op) {
	to := ctx.Sender()
	if to == nil {
		return
	}
	sys := ctx.ActorSystem()
	answer := func(res *wire.OpResult) { sys.Root.Send(to, res) }
	if !a.isMemberAddress(to.Address) {
		// Only members of the topology use this node's clients (a process
		// that merely reaches the remote port is refused; nothing sent).
		answer(&wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_NOT_FOUND, Message: "not a member of this node's topology"})
		return
	}
	if a.leaving {
		answer(&wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_CLOSED, Message: "the member is leaving"})
		return
	}
	lc, ok := a.local[op.GetClientId()]
	var c *actors.Client
	if ok {
		// The handle made from the PID discovery gave: a client started
		// before remote was has an address of "nonhost", which a lookup by
		// lc.pid (this node's address) would not find.
		c = lc.client
		ok = c.Done() != nil
	}
	if !ok {
		answer(&wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_NOT_FOUND, Message: "no such client on this member"})
		return
	}
	sh := a.sh
	if sh.inFlight.Load() >= int64(sh.o.maxInFlight) {
		sh.refused.Add(1)
		sh.o.logger.Warn("operation refused: too many in flight", zap.Int("max", sh.o.maxInFlight))
		answer(&wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_OVERLOADED, Message: "too many operations in flight on this member"})
		return
	}
	if !sh.beginOp() {
		answer(&wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_CLOSED, Message: "the member is leaving"})
		return
	}
	sh.inFlight.Add(1)
	dl := deadlineOf(op, time.Now(), sh.o.timeout)
	go func() {
		defer sh.ops.Done()
		res := run(sh.opCtx, c, op, dl)
		sh.inFlight.Add(-1)
		sh.served.Add(1)
		answer(res)
	}()
}

// MaxWireMessage bounds the payload of an operation or of its answer
// between nodes: Proto.Actor's gRPC transport refuses messages over 4 MiB,
// and such a refusal would cut the link between the members. A bigger
// request is refused on the caller's node (nothing sent); a bigger answer
// is replaced by an error that says the operation was executed.
const MaxWireMessage = 3 << 20

// run performs op on c, bounded by the caller's deadline, and keeps the
// answer small enough to cross nodes.
func run(parent context.Context, c *actors.Client, op *wire.Op, deadline time.Time) *wire.OpResult {
	res := runOp(parent, c, op, deadline)
	if n := len(res.GetData()) + len(res.GetRpcData()) + len(res.GetMessage()); n > MaxWireMessage {
		return &wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_OTHER,
			Message: fmt.Sprintf("the answer (%d bytes) is over the %d bytes that may cross nodes; the operation was executed", n, MaxWireMessage)}
	}
	return res
}

// deadlineOf is when an operation that arrived at arrived must end: the
// caller's own deadline (absolute, so that the time the op spent on the
// way and in queues counts), capped by arrival plus the time the caller
// had left when it sent it (which bounds it when this node's clock runs
// behind the caller's). An op without either gets fallback from arrival.
func deadlineOf(op *wire.Op, arrived time.Time, fallback time.Duration) time.Time {
	timeout := time.Duration(op.GetTimeoutNs())
	if timeout <= 0 {
		timeout = fallback
	}
	dl := arrived.Add(timeout)
	if ns := op.GetDeadlineUnixNs(); ns > 0 {
		if abs := time.Unix(0, ns); abs.Before(dl) {
			dl = abs
		}
	}
	return dl
}

func runOp(parent context.Context, c *actors.Client, op *wire.Op, deadline time.Time) *wire.OpResult {
	if !time.Now().Before(deadline) {
		return &wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_TIMEOUT,
			Message: "the caller's deadline passed before the operation could run on this member; nothing sent"}
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	switch op.GetKind() {
	case wire.OpKind_OP_KIND_SEND:
		return resultOf(nil, c.Send(ctx, op.GetData()))
	case wire.OpKind_OP_KIND_REQUEST:
		return resultOf(c.Request(ctx, op.GetData()))
	case wire.OpKind_OP_KIND_CALL:
		var params any
		if len(op.GetData()) > 0 {
			params = json.RawMessage(op.GetData())
		}
		return resultOf(c.Call(ctx, op.GetMethod(), params))
	}
	return &wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_INVALID_REQUEST, Message: "unknown operation " + op.GetKind().String()}
}

// beginOp counts an operation in flight, unless Stop has started waiting
// for them (a WaitGroup must not grow while it is waited on).
func (sh *shared) beginOp() bool {
	sh.opsMu.Lock()
	defer sh.opsMu.Unlock()
	if sh.opsDone {
		return false
	}
	sh.ops.Add(1)
	return true
}

// closeOps: from now on no operation starts; Stop may wait for ops.
func (sh *shared) closeOps() {
	sh.opsMu.Lock()
	sh.opsDone = true
	sh.opsMu.Unlock()
}
