// Package cluster lets a balancer use clients held by other nodes of a
// Proto.Actor cluster: a balanced send on node A may go out through a
// connection held by node B.
//
// Each node runs one Agent: an actor named AgentName on its cluster
// member. The agent
//
//   - offers its local clients (from a discovery function such as
//     supervision.Supervisor.ListClients) to the agents of the other
//     members that subscribe to it: the answer is the list of its clients
//     with their health, and later changes follow as they happen;
//   - registers with each local client for its health (as actors.Client.WatchHealth does)
//     and sends compact summaries: at once when a change may
//     change whether the client is picked (state, connection generation,
//     heartbeat failures), batched every FlushInterval otherwise;
//   - runs the operations other nodes send it on its clients and answers
//     with a result that names the actors error, so that the
//     caller's node rebuilds an error errors.Is and errors.As match;
//   - on the other side, follows the cluster's topology (its provider's
//     member list): it watches the agent on every other member (remote
//     watch) and subscribes to it, and gives the balancer an endpoint per
//     remote client (Resolve) whose health it pushes to the balancer's
//     router as *actors.HealthUpdate.
//
// Why not cluster gossip: in this Proto.Actor version the gossip actor
// hands its live state to the remote writer that serializes it and to
// GetState callers (data races under -race), and spreads it only on its
// own ticks. The topology, the remote watch and direct messages are what
// the agent needs; every cluster provider, the in-memory test provider
// included, supplies the topology.
//
// Only protobuf messages cross nodes (internal/wire/wire.proto: the wire
// types are internal, not part of this package's API); inside a node the
// agent speaks the plain Go messages of package actors.
//
// Wiring a balancer on a node, with its member built by package
// balancer/cluster/membership (etcd, automanaged, or Kubernetes):
//
//	m, err := membership.Start(sys, cfg)
//	agent, err := cluster.Start(m.Cluster, sup.ListClients, cluster.WithMembers(m.Members))
//	b, err := balancer.New(sys,
//		balancer.WithDiscovery(agent.Discovery), // local + remote clients
//		balancer.WithResolver(agent.Resolve))    // endpoints for the remote ones
//	stop := agent.OnChange(b.Invalidate)         // join without waiting for the discovery interval
//
// A member leaving the cluster (a graceful Shutdown, or Agent.Stop) takes
// its clients out of the other members' tables at once; operations already
// in flight through them are still answered. A member lost abruptly is
// noticed through Proto.Actor's remote watch of its agent (the endpoint
// terminates): its clients leave the tables and operations in flight fail
// at once with actors.ErrDisconnected, which the balancer retries
// elsewhere only when the operation is retry-safe. While the topology
// still lists it, a lost member is asked again with backoff, and its
// clients are used again once it answers (a partition that heals); a
// member that leaves the topology is forgotten. Each run of an agent has
// a marker of its own that the others watch, so the end of an earlier run
// never drops a later one.
//
// An operation carries the caller's deadline (absolute): the serving
// node gives up at it, so an order that arrives after the caller got
// actors.ErrTimeout is not sent.
//
// Package balancer/cluster/budget shares a venue's per-IP connection
// limit between the nodes that dial from one IP.
//
// Importing this package links Proto.Actor's remote and cluster packages
// (and gRPC); package balancer alone does not.
package cluster
