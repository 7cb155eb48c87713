// Package actors is the zenws client: one WebSocket connection per
// Proto.Actor actor, which connects, reconnects with full-jitter backoff,
// proves the connection alive with heartbeats, and delivers inbound
// messages in order to a handler or an actor.
//
// Start a client with Connect (standalone, from any actor system), spawn it
// under your own parent with Props and get a handle with NewClient, or let
// a supervision.Supervisor start it.
//
// The actor owns the connection's life cycle; the Client handle writes to
// the connection the actor published and reads the snapshot it published,
// so Send, State and Health never wait for the actor's mailbox.
//
// Every wait is bounded, every queue is bounded with a documented policy,
// and errors are typed: ErrNotConnected, ErrDisconnected, ErrClosed,
// ErrTimeout, *GiveUpError, *FatalError, *ConfigError, and transport's
// *HandshakeError and *CloseError underneath.
package actors
