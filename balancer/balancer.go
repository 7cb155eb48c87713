package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
)

var (
	// ErrNoConnections: no client in the pool is connected with a healthy
	// heartbeat. Nothing was sent.
	ErrNoConnections = errors.New("zenws/balancer: no connected client")
	// ErrMaxAttempts wraps the last error after MaxAttempts clients failed,
	// and also the first error that may have reached the server
	// (ErrDisconnected, ErrTimeout) when the last did not: errors.Is tells
	// whether any attempt may have been sent.
	ErrMaxAttempts = errors.New("zenws/balancer: max attempts reached")
	// ErrStopped: the balancer was stopped.
	ErrStopped = errors.New("zenws/balancer: stopped")
)

// Balancer is a handle on a router actor. Its methods are safe for
// concurrent use. A pick reads the table the router published (no message
// to the router, no question to any client) and the operation goes
// straight to the chosen client.
type Balancer struct {
	sh *shared
}

// New spawns a router actor on sys and returns its handle once the first
// discovery is in its table, or once WithStartWait's bound (default 5 s)
// has passed, whichever comes first: past the bound the table fills in when
// discovery answers (Refresh waits for it under a ctx). Invalid options
// return an *actors.ConfigError naming the option.
func New(sys *actor.ActorSystem, opts ...Option) (*Balancer, error) {
	if sys == nil {
		return nil, errors.New("zenws/balancer: New: nil actor system")
	}
	o := newOptions(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	sh := newShared(o)
	sh.sys = sys
	pid, err := sys.Root.SpawnNamed(propsFor(sh), "zenws-balancer"+sys.ProcessRegistry.NextId())
	if err != nil {
		return nil, fmt.Errorf("zenws/balancer: spawn: %w", err)
	}
	sh.pid.Store(pid)
	b := &Balancer{sh: sh}
	if o.startWait > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), o.startWait)
		defer cancel()
		_ = b.Refresh(ctx) // past the bound the balancer works all the same
	}
	return b, nil
}

// Props returns props for one router actor to spawn under your own parent;
// get its handle with Of. Spawn each Props once: its instances (after a
// restart) share one table. Options out of range (see New) make the actor
// log the error and stop at once, and Of then finds nothing.
func Props(opts ...Option) *actor.Props {
	sh := newShared(newOptions(opts))
	return actor.PropsFromProducer(func() actor.Actor { return &router{sh: sh} })
}

func propsFor(sh *shared) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &router{sh: sh} })
}

// Of returns the handle of a router actor spawned with Props, once it has
// started.
func Of(sys *actor.ActorSystem, pid *actor.PID) (*Balancer, bool) {
	if sys == nil || pid == nil {
		return nil, false
	}
	sh, ok := handles(sys).Load(pid.Id)
	if !ok {
		return nil, false
	}
	return &Balancer{sh: sh}, true
}

// validate reports invalid values, as an *actors.ConfigError naming the
// option.
func (o options) validate() error {
	bad := func(field, format string, args ...any) error {
		return &actors.ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	switch {
	case o.attempts < 1:
		return bad("MaxAttempts", "must be at least 1, got %d", o.attempts)
	case o.interval <= 0:
		return bad("DiscoveryInterval", "must be positive, got %v", o.interval)
	case o.strategy.pick == nil:
		return bad("Strategy", "none set")
	case o.startWait < 0:
		return bad("StartWait", "must not be negative, got %v", o.startWait)
	case o.stopWait <= 0:
		return bad("StopWait", "must be positive, got %v", o.stopWait)
	}
	return nil
}

// PID is the router actor's PID.
func (b *Balancer) PID() *actor.PID { return b.sh.pid.Load() }

// Refresh reads discovery again now and returns once the table reflects
// it (or ctx ends). It waits for the first health push of newly discovered
// clients at most 1 s: one that has not pushed by then is in the table,
// not eligible yet (NotPicked "no health yet"), and joins when it pushes.
func (b *Balancer) Refresh(ctx context.Context) error {
	if ctx == nil {
		return actors.ErrNilContext
	}
	select {
	case <-b.sh.stopped:
		return ErrStopped
	default:
	}
	reply := make(chan struct{})
	b.sh.sys.Root.Send(b.PID(), &refreshReq{reply: reply})
	select {
	case <-reply:
		return nil
	case <-b.sh.stopped:
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("zenws/balancer: Refresh: %w", context.Cause(ctx))
	}
}

// Invalidate asks the router to read discovery again soon, without
// waiting (a supervisor calls it when its list of clients changes). Runs it
// asks for are paced: the next starts at once, or, if the last ended less
// than ten of its durations ago, when that time is up (one run for all
// the Invalidates meanwhile); Refresh is not paced.
func (b *Balancer) Invalidate() {
	select {
	case <-b.sh.stopped:
	default:
		b.sh.sys.Root.Send(b.PID(), &invalidate{})
	}
}

// Stop stops the router actor and waits for it, at most WithStopWait's
// bound (default 5 s; past it the error matches actors.ErrTimeout). The
// clients keep running. Calling it again returns nil once stopped.
func (b *Balancer) Stop() error {
	select {
	case <-b.sh.stopped:
		return nil
	default:
	}
	b.sh.sys.Root.Stop(b.PID())
	t := time.NewTimer(b.sh.o.stopWait)
	defer t.Stop()
	select {
	case <-b.sh.stopped:
		return nil
	case <-t.C:
		return fmt.Errorf("zenws/balancer: Stop: router still running after %v: %w", b.sh.o.stopWait, actors.ErrTimeout)
	}
}

// Send writes msg as one text message through the best connected client.
// When that fails without sending anything (not connected, rate-limited,
// stopped) it tries the next best, up to MaxAttempts clients; a failure
// that may have reached the server (ErrDisconnected) is returned as it is
// unless the operation is RetrySafe. opts apply to this send only
// (RetrySafe, CallMaxAttempts). Errors: ErrNoConnections when no
// client is connected, an error wrapping ErrMaxAttempts and the last error,
// or the last error when every client was tried; either also wraps the
// first ErrDisconnected or ErrTimeout an attempt met, so errors.Is says
// whether the message may have reached a venue.
func (b *Balancer) Send(ctx context.Context, msg []byte, opts ...CallOption) error {
	_, err := b.run(ctx, opts, false, func(ctx context.Context, ep Endpoint) (json.RawMessage, error) {
		return nil, ep.Send(ctx, msg)
	})
	return err
}

// Request sends msg (a JSON-RPC request with its own "id") through the best
// connected client and returns the whole response, as Client.Request does.
// It fails over as Send does; a request whose method the retry-safe rule
// accepts (default: public/*), or one marked RetrySafe, is also tried
// again after ErrDisconnected or ErrTimeout. The rule applies only to a
// message with one "method" member: one that spells it twice (escaped, or
// in another case, which Go's encoding/json also takes) may be read by the
// venue as another method than the rule saw. A JSON-RPC error response is
// an answer: it is returned, never retried.
func (b *Balancer) Request(ctx context.Context, msg []byte, opts ...CallOption) (json.RawMessage, error) {
	method := ""
	if env, ok := jsonrpc.Peek(msg); ok {
		method, _ = jsonrpc.String(env.Method)
	}
	// A message that spells "method" twice (escaped, or in another case)
	// may be read by the venue as another method than the rule saw: it is
	// not retry-safe by the rule.
	safe := b.sh.o.retrySafe != nil && method != "" && b.sh.o.retrySafe(method) && jsonrpc.Members(msg, "method") == 1
	return b.run(ctx, opts, safe,
		func(ctx context.Context, ep Endpoint) (json.RawMessage, error) { return ep.Request(ctx, msg) })
}

// Call is Client.Call through the best connected client, failing over as
// Request does.
func (b *Balancer) Call(ctx context.Context, method string, params any, opts ...CallOption) (json.RawMessage, error) {
	return b.run(ctx, opts, b.sh.o.retrySafe != nil && b.sh.o.retrySafe(method),
		func(ctx context.Context, ep Endpoint) (json.RawMessage, error) { return ep.Call(ctx, method, params) })
}

// ClientHealth is one client as the balancer sees it: the figures a pick
// uses and what the client last pushed.
type ClientHealth struct {
	PID          *actor.PID
	Remote       bool          // held by another node
	Eligible     bool          // connected with a healthy heartbeat: may be picked
	Health       actors.Health // as last pushed by the client (zero before its first push)
	Outstanding  int64         // balanced operations in flight through it
	PeakEWMA     time.Duration // decayed peak EWMA of its round trips
	RecentErrors float64       // decaying count of failed operations
	Load         float64       // what PeakEWMA minimises (lower wins)
	Score        float64       // the HealthScore strategy's score, 0-100 (higher wins)
	Picks        uint64
	Failures     uint64

	// Explaining a pick (issue 13).

	// NotPicked says why a pick skips this client now, or ranks it after
	// the others; "" when it competes on the strategy's figures (Load for
	// PeakEWMA, Score for HealthScore; Stats.Strategy names the one in
	// use). One of: "no health yet" (discovered, no push yet), "not
	// connected (<state>)", "heartbeat failing (<n> unanswered)",
	// "degraded: ranked after healthy clients" (its wanted channels are
	// not all active; still eligible).
	NotPicked string
}

// PoolHealth lists every client in the table with its score and inputs,
// and why a pick would skip it (NotPicked).
func (b *Balancer) PoolHealth() []ClientHealth {
	t := b.sh.table.Load()
	now := time.Now().UnixNano()
	out := make([]ClientHealth, 0, len(t.members))
	for _, m := range t.members {
		ch := ClientHealth{
			PID:          m.pid,
			Remote:       m.remote,
			Outstanding:  m.outstanding.Load(),
			PeakEWMA:     time.Duration(m.costAt(now)),
			RecentErrors: m.recentErrors(now),
			Load:         m.load(now),
			Score:        m.score(now),
			Picks:        m.picks.Load(),
			Failures:     m.failures.Load(),
		}
		h := m.health.Load()
		if h != nil {
			ch.Health, ch.Eligible = *h, eligible(h)
		}
		ch.NotPicked = notPicked(h)
		out = append(out, ch)
	}
	return out
}

// Stats counts the balancer's failovers and its ErrNoConnections answers,
// and names its strategy.
type Stats struct {
	Failovers     uint64 // operations tried again on another client
	NoConnections uint64
	Strategy      string // the strategy in use (Strategy.String): which ClientHealth figure picks compare
}

// Stats returns the balancer's counters.
func (b *Balancer) Stats() Stats {
	return Stats{Failovers: b.sh.failovers.Load(), NoConnections: b.sh.noConns.Load(), Strategy: b.sh.o.strategy.String()}
}
