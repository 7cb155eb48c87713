// Package sysreg keeps, per actor system, the state an actor shares with
// the handles made over its PID alone (balancer.Of,
// supervision.NewSupervisor), without a package-global map.
//
// A Registry lives in its actor system's process registry, as Proto.Actor's
// own event stream and futures do: one entry per registry name, created on
// first use with the process registry's atomic add, so two goroutines
// asking for it at once get the same one, and it goes with its system.
// (Proto.Actor's Extensions would be the obvious home, but registering one
// is an unsynchronized slice write, which races when done on first use.)
package sysreg

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// Registry maps the PID id of a running actor to the state it shares with
// its handles. Its methods are safe for concurrent use.
type Registry[T comparable] struct {
	sys *actor.ActorSystem
	m   sync.Map // PID id -> T
}

// For returns sys's registry named name, creating it on first use. Each
// name must always be asked for with the same T.
func For[T comparable](sys *actor.ActorSystem, name string) *Registry[T] {
	if p, ok := sys.ProcessRegistry.GetLocal(name); ok {
		return p.(*Registry[T]) // a name is used by one package with one T
	}
	fresh := &Registry[T]{sys: sys}
	if _, added := sys.ProcessRegistry.Add(fresh, name); added {
		return fresh
	}
	p, _ := sys.ProcessRegistry.GetLocal(name)
	return p.(*Registry[T]) // a name is used by one package with one T
}

// Load returns the state stored for id.
func (r *Registry[T]) Load(id string) (T, bool) {
	v, ok := r.m.Load(id)
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}

// LoadOrStore returns the state stored for id, or stores v and returns it.
func (r *Registry[T]) LoadOrStore(id string, v T) T {
	got, _ := r.m.LoadOrStore(id, v)
	return got.(T)
}

// CompareAndDelete removes id's entry if it is still v (a later actor of
// the same id keeps its own).
func (r *Registry[T]) CompareAndDelete(id string, v T) { r.m.CompareAndDelete(id, v) }

// A Registry is a Process only to live in the process registry: it is not
// an actor, and what is sent to it goes to the dead letters, where
// Proto.Actor logs and counts what reaches no actor.

// SendUserMessage implements actor.Process: to the dead letters.
func (r *Registry[T]) SendUserMessage(pid *actor.PID, message any) {
	r.sys.DeadLetter.SendUserMessage(pid, message)
}

// SendSystemMessage implements actor.Process: to the dead letters.
func (r *Registry[T]) SendSystemMessage(pid *actor.PID, message any) {
	r.sys.DeadLetter.SendSystemMessage(pid, message)
}

// Stop implements actor.Process.
func (r *Registry[T]) Stop(*actor.PID) {}
