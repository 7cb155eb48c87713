package supervision

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/guardian"
	"github.com/zenws/zenws/internal/pidname"
	"github.com/zenws/zenws/internal/sysreg"
)

var (
	// ErrNotFound: the PID is not a client of this supervisor.
	ErrNotFound = errors.New("zenws: client not found in this supervisor")
	// ErrStopped: the supervisor has stopped.
	ErrStopped = errors.New("zenws: supervisor stopped")
)

// shared is what a supervisor actor and its handles share, found by PID.
type shared struct {
	sys   *actor.ActorSystem
	pid   *actor.PID
	o     options
	strat *strategy

	// The live clients, for ListClients and StopClient. The supervisor
	// actor is their only writer: a change costs it a map write, not a
	// copy of the list (which made starting or stopping n clients cost n²).
	mu          sync.Mutex
	members     map[string]*actor.PID     // live clients, by PID id
	list        []*actor.PID              // members as a slice, built by the first reader after a change; nil: stale
	listChanged chan struct{}             // closed and replaced on every change
	clients     map[string]*actors.Client // live clients' handles, for StopClient and Stop
	retired     []*actors.Client          // stopped clients whose goroutines may still run
	retireSweep int                       // len(retired) at which retireLocked next drops the finished

	stopped  chan struct{}
	stopOnce sync.Once
	stopping atomic.Bool

	balMu     sync.Mutex
	bal       atomic.Pointer[balancer.Balancer] // created by the first SendBalanced
	balClosed bool                              // Stop ran: no balancer any more
}

// handles is the actor system's registry through which a handle made from
// a bare PID (NewSupervisor) and a restarted supervisor actor find the
// shared state. A supervisor from Start gets it through its producer
// closure; one from Props creates it when it first starts, per PID (one
// Props may be spawned more than once).
func handles(sys *actor.ActorSystem) *sysreg.Registry[*shared] {
	return sysreg.For[*shared](sys, "zenws/supervision/supervisors")
}

func lookupShared(sys *actor.ActorSystem, pid *actor.PID) *shared {
	if sys == nil || pid == nil {
		return nil
	}
	sh, _ := handles(sys).Load(pid.Id)
	return sh
}

func newShared(sys *actor.ActorSystem, pid *actor.PID, o options, strat *strategy) *shared {
	return &shared{sys: sys, pid: pid, o: o, strat: strat,
		members: map[string]*actor.PID{}, list: []*actor.PID{}, listChanged: make(chan struct{}),
		clients: map[string]*actors.Client{}, stopped: make(chan struct{})}
}

// Props returns the props of a ClientSupervisor actor, to embed under your
// own parent (your parent's strategy then decides what happens when it
// escalates). Get a handle with NewSupervisor.
func Props(opts ...Option) *actor.Props {
	o := newOptions(opts)
	o.sanitize()
	strat := newStrategy(o, true)
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{o: o, strat: strat}
	}, actor.WithSupervisor(strat))
}

// Start spawns a ClientSupervisor actor at the top level of sys and returns
// its handle.
func Start(sys *actor.ActorSystem, opts ...Option) (*Supervisor, error) {
	if sys == nil {
		return nil, errors.New("zenws: supervision.Start: nil actor system")
	}
	o := newOptions(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	name := "zenws-supervisor" + sys.ProcessRegistry.NextId()
	pid := sys.NewLocalPID(name)
	strat := newStrategy(o, true)
	sh := newShared(sys, pid, o, strat)
	// Registered before the spawn, so that NewSupervisor over this PID
	// finds it as soon as Start returns.
	handles(sys).LoadOrStore(pid.Id, sh)
	props := actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{o: o, strat: strat, sh: sh}
	}, actor.WithSupervisor(strat), actor.WithGuardian(guardian.Stop))
	if _, err := sys.Root.SpawnNamed(props, name); err != nil {
		handles(sys).CompareAndDelete(pid.Id, sh)
		return nil, fmt.Errorf("zenws: spawn supervisor: %w", err)
	}
	s := &Supervisor{sys: sys, pid: pid}
	s.sh.Store(sh)
	return s, nil
}

// Messages to the supervisor actor.
type startChild struct {
	cfg   actors.Config
	reply chan startReply
	// claim decides between the supervisor spawning the client and
	// StartClient giving up on its ctx: whoever swaps it from 0 wins, so a
	// client is never spawned for a StartClient that has returned.
	claim atomic.Int32 // 0 open, 1 taken by the supervisor, 2 abandoned
}

type startReply struct {
	c   *actors.Client
	err error
}

type supervisorActor struct {
	o     options
	strat *strategy
	sh    *shared
}

// Receive handles the supervisor's messages.
func (a *supervisorActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if a.sh == nil { // spawned from Props: per PID, kept over restarts
			a.sh = handles(ctx.ActorSystem()).LoadOrStore(ctx.Self().Id, newShared(ctx.ActorSystem(), ctx.Self(), a.o, a.strat))
		}
		// After a restart of the supervisor itself its children are gone.
		a.clearMembers()
	case *startChild:
		if !m.claim.CompareAndSwap(0, 1) {
			return // StartClient returned already (its ctx ended)
		}
		if a.sh.stopping.Load() {
			m.reply <- startReply{err: ErrStopped}
			return
		}
		c, err := actors.Spawn(ctx, m.cfg)
		if err != nil {
			m.reply <- startReply{err: err}
			return
		}
		a.join(c)
		m.reply <- startReply{c: c}
	case *actor.Terminated:
		c, ok := a.leave(m.Who)
		if !ok {
			return
		}
		var reason error
		if r := a.strat.forget(m.Who); r != nil {
			// The strategy stopped it: that decision is the reason.
			if err, ok := r.(error); ok {
				reason = err
			} else {
				reason = fmt.Errorf("zenws: stopped by its supervisor after: %v", r)
			}
		} else if c != nil {
			reason = c.Health().StopReason
		}
		a.o.logger.Info("client stopped", pidname.Field("client", m.Who), zap.NamedError("reason", reason))
		publish(ctx.ActorSystem(), a.o.logger, &ClientDisconnected{Supervisor: ctx.Self(), Client: m.Who, Reason: reason})
	case *actor.Stopping:
		a.sh.stopping.Store(true)
	case *actor.Stopped:
		a.clearMembers()
		handles(ctx.ActorSystem()).CompareAndDelete(ctx.Self().Id, a.sh)
		a.sh.stopOnce.Do(func() { close(a.sh.stopped) })
		// However the supervisor stopped (Stop, its parent, an
		// escalation), its balancer goes with it.
		if b := a.sh.closeBalancer(); b != nil {
			ctx.ActorSystem().Root.Stop(b.PID())
		}
	}
}

// join lists a client the supervisor has spawned.
func (a *supervisorActor) join(c *actors.Client) {
	pid := c.PID()
	a.sh.mu.Lock()
	a.sh.members[pid.Id] = pid
	a.sh.clients[pid.Id] = c
	a.sh.changedLocked()
	a.sh.mu.Unlock()
	a.invalidateBalancer()
}

// leave unlists a terminated client and retires its handle; ok is false
// when it was not listed (a child of the supervisor's previous instance).
func (a *supervisorActor) leave(pid *actor.PID) (c *actors.Client, ok bool) {
	a.sh.mu.Lock()
	if _, ok = a.sh.members[pid.Id]; ok {
		delete(a.sh.members, pid.Id)
		a.sh.changedLocked()
		c = a.sh.clients[pid.Id]
		delete(a.sh.clients, pid.Id)
		if c != nil {
			a.sh.retireLocked(c)
		}
	}
	a.sh.mu.Unlock()
	if ok {
		a.invalidateBalancer()
	}
	return c, ok
}

// clearMembers unlists every client (the handles stay, for Stop).
func (a *supervisorActor) clearMembers() {
	a.sh.mu.Lock()
	clear(a.sh.members)
	a.sh.changedLocked()
	a.sh.mu.Unlock()
	a.invalidateBalancer()
}

// changedLocked marks the list stale and wakes those waiting for a change.
func (sh *shared) changedLocked() {
	sh.list = nil
	close(sh.listChanged)
	sh.listChanged = make(chan struct{})
}

// invalidateBalancer tells the balancer, if any, that the clients changed.
func (a *supervisorActor) invalidateBalancer() {
	if b := a.sh.bal.Load(); b != nil {
		b.Invalidate()
	}
}

// listed reports whether pid is among the live clients (as live says), and
// a channel closed at the next change of the list.
func (sh *shared) listed(pid *actor.PID) (bool, <-chan struct{}) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p, ok := sh.members[pid.Id]
	if !ok || !p.Equal(pid) {
		return false, sh.listChanged
	}
	if c := sh.clients[pid.Id]; c != nil && c.State() == actors.StateDisconnected {
		return false, sh.listChanged
	}
	return true, sh.listChanged
}

// live is the published list without the clients that have stopped for
// good. The supervisor actor learns of a stop from its Terminated message,
// after the client has published StateDisconnected, run OnDisconnect and
// released Wait; each client's own state is read so that ListClients
// agrees with them at once.
func (sh *shared) live() []*actor.PID {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.list == nil {
		sh.list = make([]*actor.PID, 0, len(sh.members))
		for _, pid := range sh.members {
			sh.list = append(sh.list, pid)
		}
	}
	out := make([]*actor.PID, 0, len(sh.list))
	for _, pid := range sh.list {
		if c := sh.clients[pid.Id]; c != nil && c.State() == actors.StateDisconnected {
			continue // stopped for good; its Terminated is on the way
		}
		out = append(out, pid)
	}
	return out
}

// Supervisor is a handle on a ClientSupervisor actor. Its methods are safe
// for concurrent use.
type Supervisor struct {
	sys *actor.ActorSystem
	pid *actor.PID
	sh  atomic.Pointer[shared]
}

// NewSupervisor returns a handle on a supervisor spawned with Props. It
// resolves the actor on first use; before the actor has started, methods
// return ErrNotFound (ListClients returns nil).
func NewSupervisor(sys *actor.ActorSystem, pid *actor.PID) *Supervisor {
	return &Supervisor{sys: sys, pid: pid}
}

// PID is the supervisor actor's PID.
func (s *Supervisor) PID() *actor.PID { return s.pid }

func (s *Supervisor) shared() *shared {
	if sh := s.sh.Load(); sh != nil {
		return sh
	}
	if s.sys == nil || s.pid == nil {
		return nil
	}
	sh := lookupShared(s.sys, s.pid)
	if sh == nil {
		return nil
	}
	s.sh.Store(sh)
	return sh
}

// StartClient spawns a client for url as a child of the supervisor and
// returns its handle once it is connected. The first connect makes up to
// 1 + RetryCount attempts, bounded by ctx; if it fails, StartClient returns
// the error (a *actors.FatalError, *actors.GiveUpError or the context's
// error) and no child is left behind (nor listed by ListClients). With
// actors.WithRetryCount(actors.RetryForever) it keeps trying until the
// venue is up or ctx ends: the way to start a client during maintenance.
//
// OnConnect (actors.WithOnConnect) runs after every successful connection,
// including after restarts; OnDisconnect when the client stops for good.
// A ClientConnected event is published for every connection, in order,
// from the client's state-observer goroutine (never the actor's own, so a
// slow event subscriber cannot stall the connection), with that
// connection's generation.
func (s *Supervisor) StartClient(ctx context.Context, url string, opts ...actors.Option) (*actors.Client, error) {
	if ctx == nil {
		return nil, fmt.Errorf("zenws: start client: %w", actors.ErrNilContext) // nothing spawned
	}
	sh := s.shared()
	if sh == nil {
		return nil, ErrNotFound
	}
	cfg, err := actors.NewConfig(url, opts...)
	if err != nil {
		return nil, err
	}
	userObserver, sys, supPID, log := cfg.StateObserver, sh.sys, sh.pid, sh.o.logger
	cfg.StateObserver = func(c actors.StateChange) {
		if c.To == actors.StateConnected {
			publish(sys, log, &ClientConnected{Supervisor: supPID, Client: c.Client, Generation: c.Generation})
		}
		if userObserver != nil {
			userObserver(c)
		}
	}
	reply := make(chan startReply, 1)
	req := &startChild{cfg: cfg, reply: reply}
	sys.Root.Send(sh.pid, req)
	var r startReply
	select {
	case r = <-reply:
	case <-sh.stopped:
		return nil, ErrStopped
	case <-ctx.Done():
		if req.claim.CompareAndSwap(0, 2) {
			return nil, fmt.Errorf("zenws: start client: %w", ctx.Err()) // never spawned
		}
		// The supervisor is spawning it right now: close it before
		// returning, so that it is not listed after StartClient failed.
		select {
		case r = <-reply:
			if r.c != nil {
				_ = r.c.Close()
			}
		case <-sh.stopped:
		}
		return nil, fmt.Errorf("zenws: start client: %w", ctx.Err())
	}
	if r.err != nil {
		return nil, r.err
	}
	c := r.c
	if err := c.WaitConnected(ctx); err != nil {
		_ = c.Close() // returns once it has stopped: it is no longer listed
		return nil, err
	}
	return c, nil
}

// StopClient closes a client gracefully (it is not restarted) and waits
// until it has stopped (bounded by the client's actors.Config.CloseWait) and
// left ListClients (bounded by WithStopWait).
// ErrNotFound when pid is not one of this supervisor's live clients.
func (s *Supervisor) StopClient(pid *actor.PID) error {
	sh := s.shared()
	if sh == nil || pid == nil {
		return ErrNotFound
	}
	if found, _ := sh.listed(pid); !found {
		return ErrNotFound
	}
	sh.mu.Lock()
	c := sh.clients[pid.Id]
	sh.mu.Unlock()
	if c == nil {
		return ErrNotFound
	}
	if err := c.Close(); err != nil && !errors.Is(err, actors.ErrClosed) {
		return err
	}
	// Return once the client has left ListClients too.
	timeout := time.NewTimer(sh.o.stopWait)
	defer timeout.Stop()
	for {
		found, changed := sh.listed(pid)
		if !found {
			return nil
		}
		select {
		case <-changed:
		case <-sh.stopped:
			return nil
		case <-timeout.C:
			return fmt.Errorf("zenws: stop client: still listed after %v: %w", sh.o.stopWait, actors.ErrTimeout)
		}
	}
}

// ListClients returns the live clients, from the set the supervisor
// updates on every change and each client's own published state: no
// round trip to an actor. A client is listed from the moment StartClient
// has it spawned until it stops for good: one whose StartClient failed is
// not listed when StartClient returns, and one that has stopped (Close,
// StopClient, a fatal error, a spent budget) is no longer listed when its
// OnDisconnect runs or its Wait returns. It is nil when the handle cannot
// find the supervisor (not started yet, or stopped before the handle first
// used it); empty when there are no clients, including after Stop.
func (s *Supervisor) ListClients() []*actor.PID {
	sh := s.shared()
	if sh == nil {
		return nil
	}
	return sh.live()
}

// Stop closes every client (each with close code 1000, never restarted),
// stops the supervisor and waits until every goroutine the clients started
// has ended, at most WithStopWait (default 10 s). Calling it again returns
// nil once stopped.
func (s *Supervisor) Stop() error {
	sh := s.shared()
	if sh == nil {
		return ErrNotFound
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.o.stopWait)
	defer cancel()
	if b := sh.closeBalancer(); b != nil {
		_ = b.Stop()
	}
	select {
	case <-sh.stopped:
	default:
		s.sys.Root.Stop(sh.pid)
		select {
		case <-sh.stopped:
		case <-ctx.Done():
			return fmt.Errorf("zenws: supervisor did not stop within %v: %w", sh.o.stopWait, actors.ErrTimeout)
		}
	}
	// Every client has terminated by now (Proto.Actor stops children
	// before their parent); wait for their goroutines.
	sh.mu.Lock()
	clients := append([]*actors.Client(nil), sh.retired...)
	for _, c := range sh.clients {
		clients = append(clients, c)
	}
	sh.mu.Unlock()
	for _, c := range clients {
		select {
		case <-c.Done():
		case <-ctx.Done():
			return fmt.Errorf("zenws: stop: client %s still has goroutines running after %v: %w", pidname.String(c.PID()), sh.o.stopWait, actors.ErrTimeout)
		}
	}
	return nil
}

// retireLocked keeps a stopped client's handle until its goroutines have
// ended, so that Stop can wait for them; finished ones are dropped. The
// list is swept when it has doubled since the last sweep, not on every
// call: when many clients stop at once (Stop, a venue gone) their
// goroutines are still closing connections, and a sweep per call made
// retiring n of them cost n².
func (sh *shared) retireLocked(c *actors.Client) {
	if len(sh.retired) >= sh.retireSweep {
		kept := sh.retired[:0]
		for _, r := range sh.retired {
			select {
			case <-r.Done():
			default:
				kept = append(kept, r)
			}
		}
		clear(sh.retired[len(kept):])
		sh.retired = kept
		sh.retireSweep = max(minRetireSweep, 2*len(kept))
	}
	sh.retired = append(sh.retired, c)
}

// minRetireSweep: below it retireLocked sweeps on every call.
const minRetireSweep = 16
