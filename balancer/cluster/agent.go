package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
)

// Agent is a handle on a node's agent actor. Its methods are safe for
// concurrent use.
type Agent struct {
	sh *shared
}

// shared is what the agent actor, its handle and the remote endpoints
// share.
type shared struct {
	sys      *actor.ActorSystem
	c        *protocluster.Cluster
	o        options
	discover func() []*actor.PID
	memberID string
	pid      atomic.Pointer[actor.PID]
	view     atomic.Pointer[view]

	opCtx    context.Context // cancelled when Stop gives up waiting
	opCancel context.CancelFunc
	ops      sync.WaitGroup // operations run for other nodes
	opsMu    sync.Mutex     // guards opsDone: no ops.Add once Stop waits
	opsDone  bool
	inFlight atomic.Int64
	served   atomic.Uint64
	members  atomic.Int64 // other members the agent keeps state for
	refused  atomic.Uint64
	silent   atomic.Uint64  // members in use treated as lost for their silence
	bg       sync.WaitGroup // the agent's own goroutines (discovery)

	expelled   chan struct{} // closed once another member said this one left its topology
	expelOnce  sync.Once
	expelledBy atomic.Pointer[string] // the address of the first member that said so

	lmu       sync.Mutex
	listeners map[uint64]func()
	nextL     uint64

	stopMu  sync.Mutex
	stopped chan struct{}
	once    sync.Once
}

// view is the published table of remote clients: what Discovery and
// Resolve read. It is immutable once published.
type view struct {
	byAddr map[string]*nodeView
	pids   []*actor.PID
}

type nodeView struct {
	n       *node
	clients map[string]*actor.PID // by actor id
}

// node is one other member as its endpoints see it.
type node struct {
	memberID string
	address  string
	agent    *actor.PID
	closing  atomic.Bool   // left, leaving or lost: send nothing new
	lost     chan struct{} // closed once its agent is unreachable: stop waiting for answers
	lostOnce sync.Once
	// answered is when an operation was last answered (unix ns): an answer
	// shows the link delivers both ways, as a Pong does, and on a link busy
	// with large operations the pings wait behind them.
	answered atomic.Int64
	// sending is the bytes of the operations in flight to it: behind them
	// on a slow link the pings wait (a silence allowance, see
	// silenceLimit).
	sending atomic.Int64
}

// noteAnswer records that an operation was answered now.
func (n *node) noteAnswer() {
	ns := time.Now().UnixNano()
	for {
		old := n.answered.Load()
		if ns <= old || n.answered.CompareAndSwap(old, ns) {
			return
		}
	}
}

func newNode(memberID, address, agentID string) *node {
	return &node{memberID: memberID, address: address, agent: actor.NewPID(address, agentID), lost: make(chan struct{})}
}

func (n *node) markLost() {
	n.closing.Store(true)
	n.lostOnce.Do(func() { close(n.lost) })
}

// Start spawns the agent of c's actor system (one per actor system: a
// second Start fails) and returns its handle. c must have been started as a
// member (StartMember). discovery lists
// the local clients to offer to other nodes (for a supervisor's clients,
// Supervisor.ListClients); nil offers none, and the node only uses other
// nodes' clients. It is called when the agent starts, every SyncInterval,
// and after Invalidate, off the agent's goroutine.
func Start(c *protocluster.Cluster, discovery func() []*actor.PID, opts ...Option) (*Agent, error) {
	if c == nil || c.ActorSystem == nil {
		return nil, errors.New("zenws/balancer/cluster: Start: nil cluster")
	}
	if c.Remote == nil || c.MemberList == nil {
		return nil, errors.New("zenws/balancer/cluster: Start: the cluster is not started (call StartMember first)")
	}
	o := newOptions(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	sh := &shared{
		sys:       c.ActorSystem,
		c:         c,
		o:         o,
		discover:  discovery,
		memberID:  c.ActorSystem.ID,
		listeners: map[uint64]func(){},
		stopped:   make(chan struct{}),
		expelled:  make(chan struct{}),
	}
	sh.opCtx, sh.opCancel = context.WithCancel(context.Background())
	sh.view.Store(&view{})
	props := actor.PropsFromProducer(func() actor.Actor { return &agentActor{sh: sh} })
	pid, err := c.ActorSystem.Root.SpawnNamed(props, AgentName)
	if err != nil {
		sh.opCancel()
		return nil, fmt.Errorf("zenws/balancer/cluster: Start: spawn the agent (one per actor system): %w", err)
	}
	sh.pid.Store(pid)
	return &Agent{sh: sh}, nil
}

// PID is the agent actor's PID.
func (a *Agent) PID() *actor.PID { return a.sh.pid.Load() }

// Discovery lists the local clients (from the discovery function given to
// Start) and the clients of every other member that publishes some. Give
// it to balancer.WithDiscovery, with Resolve to balancer.WithResolver.
func (a *Agent) Discovery() []*actor.PID {
	var out []*actor.PID
	if a.sh.discover != nil {
		out = append(out, a.sh.discover()...)
	}
	return append(out, a.sh.view.Load().pids...)
}

// Resolve returns the endpoint of a client held by another member, or
// false when pid is not one the agent knows (give it to
// balancer.WithResolver). The endpoint sends each operation to the agent
// on the client's node and waits for its answer, at most until ctx's
// deadline (RequestTimeout without one). It also delivers the client's
// health to a router that asks (WatchHealth), as *actors.HealthUpdate, and
// an *actor.Terminated when the client or its member is gone.
func (a *Agent) Resolve(pid *actor.PID) (balancer.Endpoint, bool) {
	if pid == nil {
		return nil, false
	}
	nv, ok := a.sh.view.Load().byAddr[pid.Address]
	if !ok {
		return nil, false
	}
	p, ok := nv.clients[pid.Id]
	if !ok {
		return nil, false
	}
	return &remoteClient{sh: a.sh, n: nv.n, pid: p}, true
}

// Invalidate asks the agent to read its local discovery again now, without
// waiting (call it when the local list of clients changes).
func (a *Agent) Invalidate() {
	select {
	case <-a.sh.stopped:
	default:
		a.sh.sys.Root.Send(a.PID(), &invalidate{})
	}
}

// OnChange registers fn to be called whenever the set of remote clients
// changes (a member joins or leaves, a remote client starts or stops), for
// example a balancer's Invalidate so that it reads Discovery at once. fn
// runs on the agent's goroutine: keep it short and do not call the agent
// from it. The returned function removes it.
func (a *Agent) OnChange(fn func()) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	sh := a.sh
	sh.lmu.Lock()
	id := sh.nextL
	sh.nextL++
	sh.listeners[id] = fn
	sh.lmu.Unlock()
	return func() {
		sh.lmu.Lock()
		delete(sh.listeners, id)
		sh.lmu.Unlock()
	}
}

func (sh *shared) changed() {
	sh.lmu.Lock()
	fns := make([]func(), 0, len(sh.listeners))
	for _, fn := range sh.listeners {
		fns = append(fns, fn)
	}
	sh.lmu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Stats counts what the agent did for other nodes.
type Stats struct {
	Served        uint64 // operations run for other nodes
	Refused       uint64 // operations refused over MaxInFlight
	InFlight      int64  // operations running now
	RemoteClients int    // clients of other members in the table
	// Members counts the other members the agent keeps state for: those
	// the topology lists now, whatever their state; a member that left is
	// forgotten, so it never grows past the cluster's size.
	Members int
	// Silent counts the times a member in use was treated as lost because
	// it did not answer for SilenceTimeout.
	Silent uint64
	// ExpelledBy is the address of the first member that said this one
	// left its topology (see Expelled); "" while none has.
	ExpelledBy string
}

// Expelled is closed once another member of the topology said that this
// member left its topology (it answers a Subscribe or ping from a member
// that left with a NotMember). Proto.Actor blocks a member that left for
// good: after this process was frozen or cut off past the membership's
// timeouts (the provider's TTL or health checks) and came back, the
// others never use its clients or answer its connections again under
// this member id, while this node may still see them. The cure is a new
// member id: start the process again (a Kubernetes liveness probe does it:
// see opspage.WithLivenessCheck). Stats.ExpelledBy names who said it.
func (a *Agent) Expelled() <-chan struct{} { return a.sh.expelled }

// Check returns an error matching ErrExpelled once Expelled is closed, nil
// before: a liveness check (opspage.WithLivenessCheck("cluster",
// agent.Check)), so that a process taken out of the cluster is restarted
// and rejoins.
func (a *Agent) Check() error {
	select {
	case <-a.sh.expelled:
		return fmt.Errorf("%w (said by %s): start the process again to rejoin", ErrExpelled, expelledBy(a.sh))
	default:
		return nil
	}
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	return Stats{
		Served:        a.sh.served.Load(),
		Refused:       a.sh.refused.Load(),
		InFlight:      a.sh.inFlight.Load(),
		RemoteClients: len(a.sh.view.Load().pids),
		Members:       int(a.sh.members.Load()),
		Silent:        a.sh.silent.Load(),
		ExpelledBy:    expelledBy(a.sh),
	}
}

// Stop leaves gracefully: the agent tells its subscribers that it is
// leaving (other members stop sending through its clients),
// waits for the operations in flight, at most StopWait (then cancels
// them), and stops. On this node, routers drop the remote clients. The
// clients themselves keep running. Calling it again returns nil.
//
// Each of its waits is bounded by StopWait (default 5 s): the leave notice,
// the operations in flight (twice: before and after they are cancelled),
// the agent actor, and (twice StopWait) a discovery function still
// running; a wait that runs out returns an error matching
// actors.ErrTimeout, except the first two, after which Stop goes on.
func (a *Agent) Stop() error {
	sh := a.sh
	sh.stopMu.Lock()
	defer sh.stopMu.Unlock()
	select {
	case <-sh.stopped:
		return nil
	default:
	}
	wait := time.NewTimer(sh.o.stopWait)
	defer wait.Stop()
	left := make(chan struct{})
	sh.sys.Root.Send(a.PID(), &leaveReq{reply: left})
	select {
	case <-left:
	case <-sh.stopped:
	case <-wait.C:
	}
	sh.closeOps()
	if !waitGroup(&sh.ops, sh.o.stopWait) {
		sh.opCancel() // every operation is bounded once its context ends
		waitGroup(&sh.ops, sh.o.stopWait)
	}
	sh.opCancel()
	sh.sys.Root.Stop(a.PID())
	wait.Reset(sh.o.stopWait)
	select {
	case <-sh.stopped:
	case <-wait.C:
		return fmt.Errorf("zenws/balancer/cluster: Stop: the agent still runs after %v: %w", sh.o.stopWait, actors.ErrTimeout)
	}
	if !waitGroup(&sh.bg, 2*sh.o.stopWait) {
		return fmt.Errorf("zenws/balancer/cluster: Stop: the discovery function did not return within %v: %w", 2*sh.o.stopWait, actors.ErrTimeout)
	}
	return nil
}

// waitGroup waits for wg at most d.
func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func expelledBy(sh *shared) string {
	if p := sh.expelledBy.Load(); p != nil {
		return *p
	}
	return ""
}

func pidKey(p *actor.PID) string { return p.Address + "/" + p.Id }

func sortPIDs(pids []*actor.PID) {
	sort.Slice(pids, func(i, j int) bool { return pidKey(pids[i]) < pidKey(pids[j]) })
}
