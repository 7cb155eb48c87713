// Package protocol holds the messages zenws's actors send each other that
// no user sends: a balancer registering with a client actor for its health.
// What a watcher receives back, *actors.HealthUpdate, is public.
package protocol

import "github.com/asynkron/protoactor-go/actor"

// WatchHealth, sent to a client actor, registers Watcher to receive an
// *actors.HealthUpdate at once and after every change of the client's
// health snapshot (state, connection generation, heartbeat outcome,
// errors). A balancer uses it to keep its table current without asking
// every client on every pick. Registrations survive restarts of the
// client; a watcher that stops is removed. actors.Client.WatchHealth sends
// it.
type WatchHealth struct{ Watcher *actor.PID }

// UnwatchHealth, sent to a client actor, ends a WatchHealth registration.
type UnwatchHealth struct{ Watcher *actor.PID }
