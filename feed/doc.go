// Package feed holds channels over a pool of clients: each channel on k
// clients at once (a redundant feed), many channels spread over the pool
// within each connection's stream limit (sharding), or both.
//
// A Pool is an actor beside the balancer. It reads the pool's clients from
// a discovery function (a supervisor's ListClients), watches their health,
// places every channel it holds on Copies distinct clients (Client.Subscribe:
// intent, restored by each client on every connection) and receives their
// notifications: the clients deliver to it (actors.WithSubscriber(p.PID())
// or actors.WithHandler(p.Handler())). It delivers each update once, the
// first time it arrives on any copy, in order, to the pool's own handler
// or subscriber: de-duplicated by the channel's sequence numbers where the
// venue has them (venue.Sequencer: an update whose Last is at or below what
// was delivered is a duplicate), by content otherwise (a window of hashes,
// like a rotation's merge).
//
// When a client's connection is lost its copies move to other clients at
// once, within their stream limits; when it comes back (or a new client
// joins) the pool moves copies back onto it to even the load, subscribing
// the new copy before it drops the old one, so a move costs no gap. A
// channel whose every copy is lost gets an actors.KindGap notice
// (actors.GapReconnect) in its stream.
//
// See docs/balancing.md ("Redundant feeds", "Sharding channels over a
// pool") for what is guaranteed and what the user still does.
package feed
