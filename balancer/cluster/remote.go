package cluster

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// The remote side: the other members' clients, as this node uses them.
//
// Every member of the topology (from the cluster provider) is asked for
// its clients: the agent watches the agent actor at AgentName on that
// member (Proto.Actor's remote watch: how an abrupt loss is noticed) and
// subscribes to it. The answer, and every later change, comes as a
// HealthBatch. A member without an agent answers the watch with
// Terminated (NotFound) and is asked again every SyncInterval, or at once
// when its agent subscribes here.
//
// The agent's name is the same in every run of it, so a Terminated about
// it cannot say which run ended. Once a member answers, the agent watches
// the run's own marker (ClientList.IncarnationId) instead: only the end
// of the run in use drops the member's clients. A member whose address
// was lost (Proto.Actor's remote watch: AddressTerminated) stays in the
// table while the topology lists it and is asked again with backoff, so a
// transient drop (a partition, a restarted link) ends once it answers.
//
// A member that is frozen, or behind a network that drops its traffic
// without a reset, loses no address: the agent pings every member in use
// every SyncInterval, and one that has answered no Ping (nor operation)
// sent in the last SilenceTimeout is treated as lost.

// nodeState is where this agent is with another member.
type nodeState int

const (
	asking  nodeState = iota // watched and subscribed, waiting for the first batch
	active                   // its clients are in the table
	absent                   // no agent there (or it stopped): ask again on the next tick
	leaving                  // its agent said it is leaving: ask again only when it subscribes here
	lost                     // its address was lost: ask again at retryAt, with backoff
)

// maxVersionAhead bounds how far (in ns, about 18 minutes: clock skew and
// list changes) a list version may be ahead of this node's clock.
const maxVersionAhead = 1 << 40

// maxLostBackoff bounds, in SyncIntervals, the wait between two asks of a
// lost member.
const maxLostBackoff = 16

// remoteNode is another member: its list and the last health of each of
// its clients.
type remoteNode struct {
	id        string
	address   string
	n         *node // the current incarnation its endpoints use
	state     nodeState
	asked     time.Time  // when it was last asked
	marker    *actor.PID // the run of its agent in use (watched); nil before the first answer
	ended     string     // the incarnation id of the last run seen to end: its late lists are stale
	heard     time.Time  // active: when it last answered a Ping
	nonce     int64      // the last Ping's nonce (random), and the one before
	prevNonce int64
	notMember time.Time               // when it last said this member left its topology (NotMember), zero if never
	retryAt   time.Time               // lost: when to ask again
	backoff   time.Duration           // lost: the wait before the next ask after that
	version   uint64                  // of the list applied
	clients   map[string]*remoteEntry // by actor id
}

type remoteEntry struct {
	pid    *actor.PID
	health *actors.Health // nil before the first summary
}

// topology records the members (this one excluded). A member that is no
// longer listed has left: it is dropped (operations in flight through it
// may still be answered) and forgotten. Proto.Actor's member list blocks a
// member that left (its id is never listed again; a restarted process is
// a new member), so nothing else needs remembering: the agent keeps
// nothing about members that are not in the topology.
func (a *agentActor) topology(ctx actor.Context, members, left []*protocluster.Member) {
	now := make(map[string]*protocluster.Member, len(members))
	for _, m := range members {
		if m.GetId() != a.sh.memberID && m.Address() != ctx.ActorSystem().Address() {
			now[m.GetId()] = m
		}
	}
	for _, m := range left {
		delete(now, m.GetId())
		a.noteLeft(m.GetId())
	}
	changed := false
	for id := range a.nodes {
		if _, ok := now[id]; !ok {
			a.noteLeft(id)
			changed = a.dropNode(ctx, id, false) || changed
			delete(a.nodes, id)
		}
	}
	for id, m := range now {
		if _, ok := a.nodes[id]; !ok {
			a.nodes[id] = &remoteNode{id: id, address: m.Address(), clients: map[string]*remoteEntry{}}
			a.ask(ctx, a.nodes[id])
		}
	}
	a.sh.members.Store(int64(len(a.nodes)))
	if changed {
		a.publishView()
		a.sh.changed()
	}
}

// ask watches the member's agent and subscribes to it.
func (a *agentActor) ask(ctx actor.Context, rn *remoteNode) {
	rn.state = asking
	rn.asked = time.Now()
	rn.n = newNode(rn.id, rn.address, AgentName)
	ctx.Watch(rn.n.agent)
	ctx.Request(rn.n.agent, &wire.Subscribe{MemberId: a.sh.memberID})
}

// retry asks again the members whose agent was missing, or has not
// answered for a SyncInterval (a Subscribe that reached the member just
// before its agent started is a dead letter there, while the watch that
// follows it finds the agent), and the lost ones whose backoff is over.
func (a *agentActor) retry(ctx actor.Context) {
	now := time.Now()
	for _, rn := range a.nodes {
		if rn.state == asking && rn.backoff > 0 && now.Sub(rn.asked) >= a.sh.o.sync {
			a.markLostNode(rn) // a lost member still silent: wait longer before the next ask
			continue
		}
		if rn.state == active && now.Sub(rn.lastHeard()) > a.silenceLimit(rn) {
			// Frozen (SIGSTOP, a long pause) or cut off by a network that
			// drops its traffic without a reset: nothing tells the remote
			// layer, and operations sent there would wait for their
			// deadlines. It is treated as lost: operations in flight
			// fail (ErrDisconnected), its clients leave the tables, and it
			// is asked again with backoff while the topology lists it.
			a.sh.o.logger.Warn("a member is silent: treated as lost", zap.String("member", rn.id),
				zap.String("address", rn.address), zap.Duration("silent", now.Sub(rn.lastHeard()).Round(time.Millisecond)))
			a.sh.silent.Add(1)
			if a.dropNode(ctx, rn.id, true) {
				a.publishView()
				a.sh.changed()
			}
			a.markLostNode(rn)
			continue
		}
		if rn.state == absent || (rn.state == asking && now.Sub(rn.asked) >= a.sh.o.sync) ||
			(rn.state == lost && !now.Before(rn.retryAt)) {
			a.ask(ctx, rn)
		} else if rn.state == active {
			ctx.Request(rn.n.agent, &wire.Subscribe{MemberId: a.sh.memberID}) // idempotent: heals a lost subscription
			rn.prevNonce, rn.nonce = rn.nonce, rand.Int64()|1                 // random: a Pong must answer a Ping, not be made up
			ctx.Request(rn.n.agent, &wire.Ping{MemberId: a.sh.memberID, Nonce: rn.nonce})
		}
	}
}

// subscribedBy: the agent of member id subscribed here, so it exists: ask
// it now if this agent is not using it yet.
func (a *agentActor) subscribedBy(ctx actor.Context, id string) {
	if rn, ok := a.nodeFor(ctx, id); ok && rn.state != active {
		a.ask(ctx, rn)
	}
}

// remoteHealth applies a batch from another member's agent: its list (the
// newest wins) and summaries.
func (a *agentActor) remoteHealth(ctx actor.Context, b *wire.HealthBatch) {
	rn, ok := a.nodeFor(ctx, b.GetMemberId())
	if !ok {
		return
	}
	l := b.GetList()
	if l != nil && l.GetVersion() > uint64(time.Now().UnixNano())+maxVersionAhead {
		// A list version starts at its agent's start time in ns: one far
		// ahead of this clock is made up, and would win over every real one.
		return
	}
	if !a.accepts(rn, l) {
		return
	}
	if l != nil && l.GetVersion() > rn.version {
		if l.GetLeaving() {
			a.remoteLeaving(ctx, rn.id)
			return
		}
		first := rn.state != active
		if first && rn.state != asking { // an answer to an earlier ask: the run behind it is there
			rn.n = newNode(rn.id, rn.address, AgentName)
		}
		rn.state = active
		rn.backoff = 0
		rn.heard = time.Now()
		a.watchRun(ctx, rn, l.GetIncarnationId())
		if a.applyList(ctx, rn, l) || first {
			a.publishView()
			a.sh.changed()
		}
		if first {
			a.sh.o.logger.Info("using the clients of a member", zap.String("member", rn.id),
				zap.String("address", rn.address), zap.Int("clients", len(rn.clients)))
		}
	}
	if rn.state != active {
		return
	}
	for _, s := range b.GetHealth() {
		e, ok := rn.clients[s.GetClientId()]
		if !ok {
			continue
		}
		h := healthOf(s)
		e.health = &h
		for _, w := range a.watchers[pidKey(e.pid)] {
			ctx.Send(w, &actors.HealthUpdate{Client: e.pid, Health: h})
		}
	}
}

// lastHeard is when rn last answered a Ping or an operation: the link
// delivers both ways, however slowly (a late answer behind large
// operations still shows it does).
func (rn *remoteNode) lastHeard() time.Time {
	if rn.n != nil {
		if ns := rn.n.answered.Load(); ns > rn.heard.UnixNano() {
			return time.Unix(0, ns)
		}
	}
	return rn.heard
}

// pong: a member answered a Ping: one of the last two this agent sent (a
// random nonce each; the one before counts, as its answer may come after
// the next Ping left).
func (a *agentActor) pong(ctx actor.Context, m *wire.Pong) {
	rn, ok := a.nodeFor(ctx, m.GetMemberId())
	if !ok || rn.state != active {
		return
	}
	if n := m.GetNonce(); n != 0 && (n == rn.nonce || n == rn.prevNonce) {
		rn.heard = time.Now()
	}
}

// nodeFor finds the member a message from another agent is about: by the
// member id it names, which is its actor system's id, or, where the
// provider lists members under ids of its own (etcd's "<cluster>@<id>"),
// by the address of its sender (agents send with themselves as sender).
func (a *agentActor) nodeFor(ctx actor.Context, memberID string) (*remoteNode, bool) {
	if rn, ok := a.nodes[memberID]; ok {
		return rn, true
	}
	if memberID != "" {
		// The member's own id inside the provider's: unambiguous where a
		// process restarted on the same address while the topology still
		// lists its dead run (etcd keeps the dead run's key until its lease
		// expires), which matching by address alone could take for it.
		for id, rn := range a.nodes {
			if strings.HasSuffix(id, "@"+memberID) {
				return rn, true
			}
		}
	}
	if s := ctx.Sender(); s != nil {
		var found *remoteNode
		for _, rn := range a.nodes {
			// Two members at one address: a process restarted on the same
			// port while the old one is still listed; the live one wins.
			if rn.address == s.Address && (found == nil || found.state == lost || found.state == absent) {
				found = rn
			}
		}
		return found, found != nil
	}
	return nil, false
}

// accepts says whether a batch from rn is used: in the states that wait
// for one, and, in the others, a list from a run other than the last one
// seen to end (a member lost through a transient drop answers again; a
// member whose agent stopped or left has a new one).
func (a *agentActor) accepts(rn *remoteNode, l *wire.ClientList) bool {
	switch rn.state {
	case asking, active:
		return true
	case lost:
		return l != nil
	}
	return l != nil && l.GetIncarnationId() != "" && l.GetIncarnationId() != rn.ended &&
		(rn.marker == nil || l.GetIncarnationId() != rn.marker.Id)
}

// watchRun watches the run of rn's agent that sent a list (its marker);
// a new run replaces the one watched.
func (a *agentActor) watchRun(ctx actor.Context, rn *remoteNode, id string) {
	if id == "" { // an agent that names no run: its own name stands for it
		id = AgentName
	}
	if rn.marker != nil && rn.marker.Id == id {
		return
	}
	if rn.marker != nil && rn.marker.Id != AgentName {
		ctx.Unwatch(rn.marker)
	}
	rn.marker = actor.NewPID(rn.address, id)
	ctx.Watch(rn.marker)
}

// applyList makes rn's clients match l; a client no longer listed is gone
// for the routers watching it. It reports a change.
func (a *agentActor) applyList(ctx actor.Context, rn *remoteNode, l *wire.ClientList) bool {
	rn.version = l.GetVersion()
	seen := make(map[string]bool, len(l.GetClientIds()))
	changed := false
	for _, cid := range l.GetClientIds() {
		seen[cid] = true
		if _, ok := rn.clients[cid]; !ok {
			rn.clients[cid] = &remoteEntry{pid: actor.NewPID(rn.address, cid)}
			changed = true
		}
	}
	for cid, e := range rn.clients {
		if !seen[cid] {
			delete(rn.clients, cid)
			a.notifyGone(ctx, e.pid)
			changed = true
		}
	}
	return changed
}

// dropNode stops using a member's clients. Lost: its agent is unreachable,
// so operations in flight fail now. Otherwise (left, leaving, its agent
// stopped) they may still be answered: its agent stays watched until it
// terminates. It reports whether clients were dropped.
func (a *agentActor) dropNode(ctx actor.Context, id string, lost bool) bool {
	rn, ok := a.nodes[id]
	if !ok || rn.n == nil {
		return false
	}
	had := len(rn.clients) > 0
	for cid, e := range rn.clients {
		delete(rn.clients, cid)
		a.notifyGone(ctx, e.pid)
	}
	rn.version = 0
	if lost || rn.marker == nil {
		rn.n.markLost()
	} else {
		rn.n.closing.Store(true)
		k := pidKey(rn.marker)
		a.draining[k] = append(a.draining[k], rn.n)
	}
	if rn.marker != nil {
		rn.ended = rn.marker.Id
		rn.marker = nil
	}
	if rn.state == active {
		a.sh.o.logger.Info("stopped using the clients of a member", zap.String("member", id),
			zap.String("address", rn.address), zap.Bool("lost", lost))
	}
	return had
}

// agentTerminated handles the end of another member's agent (or of the
// watch on it). It reports whether m was about such an agent.
//
// Which Terminated counts: one about the run in use (its marker), or, for
// a member asked and not yet answered, one about the agent's name (there
// is no agent, or it stopped). One about an earlier run is stale: the
// later run's answer follows it on the same link. A lost address ends
// every watch on it: the member is lost, and asked again with backoff
// while the topology lists it.
func (a *agentActor) agentTerminated(ctx actor.Context, m *actor.Terminated) bool {
	k := pidKey(m.Who)
	ns, draining := a.draining[k]
	if draining { // nothing will answer what is still in flight
		delete(a.draining, k)
		for _, n := range ns {
			n.markLost()
		}
	}
	for id, rn := range a.nodes {
		ofRun := rn.marker != nil && pidKey(rn.marker) == k
		ofName := rn.n != nil && pidKey(rn.n.agent) == k
		if !ofRun && !ofName {
			continue
		}
		switch {
		case m.Why == actor.TerminatedReason_AddressTerminated && rn.state == active && a.sharesAddress(rn):
			// Another member listed at this address (a process restarted
			// on it while the topology still lists its dead run): when the
			// dead run leaves, Proto.Actor ends the endpoint of the
			// address, the live member's too, and what was queued on it is
			// lost. Operations in flight fail now (not at their
			// deadlines), and the member is asked again at once, not after
			// a backoff: it is there.
			a.sh.o.logger.Info("the link to a member was reset as another member at its address left: asking it again",
				zap.String("member", rn.id), zap.String("address", rn.address))
			if a.dropNode(ctx, id, true) {
				a.publishView()
				a.sh.changed()
			}
			a.ask(ctx, rn)
		case m.Why == actor.TerminatedReason_AddressTerminated:
			if rn.state == asking || rn.state == active {
				// Proto.Actor's remote lost its connection to the member
				// (the cluster provider may list it for a while, or it
				// comes back).
				if a.dropNode(ctx, id, true) {
					a.publishView()
					a.sh.changed()
				}
				a.markLostNode(rn)
			}
		case ofRun && rn.state == active, ofName && rn.state == asking && rn.marker == nil:
			// the run in use stopped, or there is no agent (yet)
			if a.dropNode(ctx, id, true) {
				a.publishView()
				a.sh.changed()
			}
			rn.state = absent
		}
		return true
	}
	return draining
}

// slowLink is the rate the silence allowance assumes a link to a member
// carries at least: behind the bytes of the operations in flight to it the
// pings wait, so each MiB in flight adds a second before it counts as
// silent (a stall behind large operations is then noticed later).
const slowLink = 1 << 20

// silenceLimit is how long rn may go without answering: the silence
// timeout, plus a second per MiB of operations in flight to it.
func (a *agentActor) silenceLimit(rn *remoteNode) time.Duration {
	extra := time.Duration(0)
	if rn.n != nil {
		extra = time.Duration(max(rn.n.sending.Load(), 0)) * time.Second / slowLink
	}
	return a.sh.o.silence + extra
}

// isMemberAddress: a member of the topology is at addr (this node's own
// address counts: its own routers).
func (a *agentActor) isMemberAddress(addr string) bool {
	if addr == a.sh.sys.Address() || addr == "nonhost" {
		return true
	}
	for _, rn := range a.nodes {
		if rn.address == addr {
			return true
		}
	}
	return false
}

// sharesAddress: another member the topology lists (or listed until just
// now) is at rn's address.
func (a *agentActor) sharesAddress(rn *remoteNode) bool {
	for _, o := range a.nodes {
		if o != rn && o.address == rn.address {
			return true
		}
	}
	return false
}

// markLostNode puts rn in the lost state: asked again after a backoff that
// doubles up to maxLostBackoff SyncIntervals.
func (a *agentActor) markLostNode(rn *remoteNode) {
	rn.state = lost
	switch {
	case rn.backoff == 0:
		rn.backoff = a.sh.o.sync
	case rn.backoff < maxLostBackoff*a.sh.o.sync:
		rn.backoff *= 2
	}
	rn.retryAt = time.Now().Add(rn.backoff)
}

// remoteLeaving: the member's agent is leaving.
func (a *agentActor) remoteLeaving(ctx actor.Context, id string) {
	rn, ok := a.nodes[id]
	if !ok || rn.state == absent || rn.state == leaving {
		return
	}
	if a.dropNode(ctx, id, false) {
		a.publishView()
		a.sh.changed()
	}
	rn.state = leaving
}

// watch registers a router for a remote client's health (a remote
// endpoint's WatchHealth). A client no longer in use is gone at once.
func (a *agentActor) watch(ctx actor.Context, client, router *actor.PID) {
	e := a.entry(client)
	if e == nil {
		a.tellGone(ctx, router, client)
		return
	}
	k := pidKey(client)
	ws := a.watchers[k]
	if ws == nil {
		ws = map[string]*actor.PID{}
		a.watchers[k] = ws
	}
	ws[pidKey(router)] = router
	ctx.Watch(router)
	if e.health != nil {
		ctx.Send(router, &actors.HealthUpdate{Client: e.pid, Health: *e.health})
	}
}

func (a *agentActor) entry(client *actor.PID) *remoteEntry {
	for _, rn := range a.nodes {
		if rn.state == active && rn.address == client.Address {
			return rn.clients[client.Id]
		}
	}
	return nil
}

// notifyGone tells every router watching client that it is gone.
func (a *agentActor) notifyGone(ctx actor.Context, client *actor.PID) {
	k := pidKey(client)
	for _, w := range a.watchers[k] {
		a.tellGone(ctx, w, client)
	}
	delete(a.watchers, k)
}

// tellGone sends a router what a local client's watchers get when it
// stops: a last health with StateDisconnected, and *actor.Terminated (a
// system message, as Proto.Actor's remote watch delivers it when an
// address terminates), so the router drops it and reads discovery again.
func (a *agentActor) tellGone(ctx actor.Context, router, client *actor.PID) {
	ctx.Send(router, &actors.HealthUpdate{Client: client, Health: actors.Health{State: actors.StateDisconnected}})
	if p, ok := ctx.ActorSystem().ProcessRegistry.Get(router); ok {
		p.SendSystemMessage(router, &actor.Terminated{Who: client, Why: actor.TerminatedReason_AddressTerminated})
	}
}

// publishView publishes the table of remote clients.
func (a *agentActor) publishView() {
	v := &view{byAddr: make(map[string]*nodeView, len(a.nodes))}
	for _, rn := range a.nodes {
		if rn.state != active {
			continue
		}
		nv := &nodeView{n: rn.n, clients: make(map[string]*actor.PID, len(rn.clients))}
		for cid, e := range rn.clients {
			nv.clients[cid] = e.pid
			v.pids = append(v.pids, e.pid)
		}
		v.byAddr[rn.address] = nv
	}
	sortPIDs(v.pids)
	a.sh.view.Store(v)
}

// maxLeft bounds the members that left which an agent remembers (to tell
// them, should they come back under the same id, that they are out).
const maxLeft = 1024

// noteLeft remembers that member id left the topology.
func (a *agentActor) noteLeft(id string) {
	if _, ok := a.left[id]; !ok && len(a.left) >= maxLeft {
		oldest, at := "", time.Time{}
		for k, t := range a.left {
			if oldest == "" || t.Before(at) {
				oldest, at = k, t
			}
		}
		delete(a.left, oldest)
	}
	a.left[id] = time.Now()
}

// hasLeft: member id (as the member names itself: its actor system id)
// left the topology; a provider may list it under an id of its own that
// ends in "@" and that id (etcd's "<cluster>@<id>").
func (a *agentActor) hasLeft(id string) bool {
	if id == "" {
		return false
	}
	return namedIn(a.left, id)
}

// namedIn: m has a key that is id, or ends in "@" and id.
func namedIn[V any](m map[string]V, id string) bool {
	if _, ok := m[id]; ok {
		return true
	}
	for k := range m {
		if strings.HasSuffix(k, "@"+id) {
			return true
		}
	}
	return false
}

// tellIfLeft answers a Subscribe or Ping from a member that left the
// topology with a NotMember, at most once per SyncInterval per sender:
// Proto.Actor will never list it again, so it should know.
func (a *agentActor) tellIfLeft(ctx actor.Context, id string) {
	s := ctx.Sender()
	if s == nil || !a.hasLeft(id) {
		return
	}
	if namedIn(a.nodes, id) {
		return // listed again: not out
	}
	now := time.Now()
	if t, ok := a.toldLeft[s.Address]; ok && now.Sub(t) < a.sh.o.sync {
		return
	}
	if len(a.toldLeft) >= maxLeft {
		clear(a.toldLeft)
	}
	a.toldLeft[s.Address] = now
	ctx.Request(s, &wire.NotMember{MemberId: a.sh.memberID}) // the sender's address names this member (nodeFor)
}

// notMember: a member of this node's topology says this node left its
// own. Proto.Actor blocks a member that left: this node is out under its
// id for good, and says so (Agent.Expelled).
func (a *agentActor) notMember(ctx actor.Context, m *wire.NotMember) {
	id := m.GetMemberId()
	rn, ok := a.nodes[id]
	if !ok && id != "" {
		for k, n := range a.nodes {
			if strings.HasSuffix(k, "@"+id) {
				rn, ok = n, true
			}
		}
	}
	if !ok || ctx.Sender() == nil || ctx.Sender().Address != rn.address {
		return // not a member of ours at its own address: nothing it says about us counts
	}
	// Believed when it says so again, a SyncInterval or more later (it
	// answers this agent's pings with it, at most once per SyncInterval):
	// one message, forged or stray, does not take a process out.
	now := time.Now()
	if rn.notMember.IsZero() || now.Sub(rn.notMember) > 10*a.sh.o.sync {
		rn.notMember = now
		return
	}
	if now.Sub(rn.notMember) < a.sh.o.sync/2 {
		return
	}
	a.sh.expelOnce.Do(func() {
		addr := rn.address
		a.sh.expelledBy.Store(&addr)
		a.sh.o.logger.Error("this member was taken out of the cluster: another member says it left its topology, and Proto.Actor does not let a member that left back in under the same id; start the process again to rejoin",
			zap.String("member", a.sh.memberID), zap.String("by", addr))
		close(a.sh.expelled)
	})
}
