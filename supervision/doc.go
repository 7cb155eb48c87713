// Package supervision runs zenws clients under a ClientSupervisor actor:
// one-for-one, with a restart budget per client, transient restarts (a
// normal close is never restarted), lifecycle callbacks and typed events on
// the actor system's event stream.
//
// Three ways to run clients, as in the original ZenWebsocket:
//
//  1. No supervision: actors.Connect. The client heals its connection but
//     stops when its reconnect attempts are spent.
//  2. A ClientSupervisor: Start (top level) or Props (under your own
//     parent), then Supervisor.StartClient. A client that gives up is
//     restarted with the same PID, up to the restart budget.
//  3. Your own parent actor spawning actors.Props children, with a strategy
//     of its own; NewStrategy gives it this package's budget and events.
//
// See docs/supervision.md for the restart rules and how they differ from
// OTP.
package supervision
