// Package balancer is the router actor that sends each message through the
// healthiest connection of a pool, with failover.
//
// The router keeps a table of the clients its discovery function returns.
// It registers with each (as actors.Client.WatchHealth does) and the clients push their
// health as it changes, so a pick costs no round trip to any client: a
// caller reads the table the router published, chooses, and the operation
// goes straight to the chosen client's connection. A client that is not
// connected, or whose heartbeat is failing, is never picked; a client that
// stops leaves the table. Discovery is read again every DiscoveryInterval
// (default 5 s), when a watched client stops, and on Refresh or Invalidate
// (a supervisor's balancer is told whenever its list changes).
//
// The default strategy, PeakEWMA, is the power of two random choices over
// a latency-aware load (see PeakEWMA for why); HealthScore is the original
// ZenWebsocket score.
//
// Failover follows one rule: a message goes out again on another
// connection only when the first attempt provably did not reach the wire
// (not connected, rate-limited, the write failed before any byte left), or
// when the operation is retry-safe: marked RetrySafe, or a method the
// retry-safe rule accepts (default PublicMethods: Deribit's public/*). A
// request that is not retry-safe and was lost in flight fails with
// actors.ErrDisconnected, so an order is never sent twice. A JSON-RPC
// error is an answer and is never retried.
package balancer
