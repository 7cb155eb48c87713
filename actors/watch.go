package actors

import (
	"errors"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/internal/protocol"
)

// The messages a balancer sends a client actor to register for its health
// (package internal/protocol).
type (
	watchHealthMsg   = protocol.WatchHealth
	unwatchHealthMsg = protocol.UnwatchHealth
)

// HealthUpdate is what a client pushes to its health watchers. The last
// one a client sends, when it stops for good, has State StateDisconnected.
// Its Health has no Channels (Degraded says whether any wanted channel is
// not active): a push follows every change of a channel's status, and a
// client may want 65,536 of them; Client.Health lists them.
type HealthUpdate struct {
	Client *actor.PID
	Health Health
}

// WatchHealth registers watcher, an actor, to receive a *HealthUpdate at
// once and after every change of the client's health snapshot (state,
// connection generation, heartbeat outcome, errors): what a balancer does
// to keep its table current without asking every client on every pick.
// Registrations survive restarts of the client; a watcher that stops is
// removed. ErrNotFound when the client is gone.
func (c *Client) WatchHealth(watcher *actor.PID) error {
	if watcher == nil {
		return errors.New("zenws: WatchHealth: nil watcher")
	}
	if c.durable() == nil {
		return ErrNotFound
	}
	c.sys.Root.Send(c.pid, &watchHealthMsg{Watcher: watcher})
	return nil
}

// watchers are the client's health watchers; the actor goroutine alone
// touches them (they live in the durable state to survive restarts).
type watchers []*actor.PID

func (a *clientActor) watchHealth(ctx actor.Context, w *actor.PID) {
	if w == nil {
		return
	}
	if x := a.d.extras(); !slices.ContainsFunc(x.watchers, w.Equal) {
		x.watchers = append(x.watchers, w)
		ctx.Watch(w)
	}
	ctx.Send(w, &HealthUpdate{Client: a.self, Health: a.d.healthBrief()})
}

func (a *clientActor) unwatchHealth(ctx actor.Context, w *actor.PID) {
	if i := slices.IndexFunc(a.d.watching(), w.Equal); i >= 0 {
		a.d.extra.watchers = slices.Delete(a.d.extra.watchers, i, i+1)
		ctx.Unwatch(w)
	}
}

// pushHealth sends the current health to every watcher.
func (a *clientActor) pushHealth() {
	if a.d == nil || len(a.d.watching()) == 0 || a.sys == nil {
		return
	}
	h := a.d.healthBrief()
	for _, w := range a.d.watching() {
		a.sys.Root.Send(w, &HealthUpdate{Client: a.self, Health: h})
	}
}
