// Package membership builds the Proto.Actor cluster a zenws node joins, so
// that users do not wire Proto.Actor by hand: one constructor per
// membership provider, each returning a *cluster.Config ready for
// Start.
//
//   - Automanaged: no server. Every node serves its membership over HTTP
//     on a port of its own and polls the others' (a fixed list of
//     host:port). The default for a few processes on one or a few hosts.
//   - Etcd: the members register under a lease in etcd and watch each
//     other there; a node that dies leaves when its lease expires (the
//     provider's TTL, 3 s).
//   - Kubernetes (production): Proto.Actor's k8s provider
//     (cluster/clusterproviders/k8s) lists the pods of the cluster through
//     the API server; build its Config with Configure over the provider
//     k8s.New returns (see docs/balancing.md). It is not wrapped here: it needs
//     a cluster and a service account to run, which this project's tests
//     do not have.
//
// Every Config this package builds has the settings zenws's agent needs
// in this Proto.Actor version (see Configure): gossip ticks once an hour
// (the agent does not use it, and its state is serialized while it
// changes: a data race), and a dead member's address is redialled once.
//
//	cfg, err := membership.Etcd(membership.Node{Port: 7001}, "127.0.0.1:2379")
//	m, err := membership.Start(sys, cfg)
//	agent, err := cluster.Start(m.Cluster, sup.ListClients, // package balancer/cluster
//		cluster.WithMembers(m.Members))
package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/zenws/zenws/balancer/cluster"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultCluster is the cluster name when Node.Cluster is empty.
const DefaultCluster = "zenws"

// Node says where this node listens and what it hosts.
type Node struct {
	Cluster string // the cluster's name; members of one cluster share it (default DefaultCluster)
	Host    string // the address Proto.Actor's remote listens on (default 127.0.0.1)
	Port    int    // its port; 0: a free one (the providers advertise the one chosen)
	// Advertised is the host:port other members dial, when it is not
	// Host:Port (behind NAT, in a container); default none.
	Advertised string
	// Kinds are the cluster kinds (virtual actors) of your own that this
	// node hosts; zenws needs none (the agent and the dial budget are
	// actors with well-known names on every node, not kinds).
	Kinds []*protocluster.Kind
}

// Configure builds a cluster config for node over provider, with the
// settings zenws's agent needs in this Proto.Actor version:
//
//   - GossipInterval one hour: the agent follows the topology and its own
//     messages, not gossip; the gossip actor hands its live state to the
//     remote writer that serializes it while it changes (a data race
//     under -race), so it is kept from ticking. Proto.Actor's gossip still
//     starts (the cluster needs it for its own heartbeat once) and its
//     first rounds run; no setting turns it off.
//   - cluster.RemoteOptions: batches of at most 8 messages, and gRPC
//     messages up to 32 MiB, so that large operations in flight together
//     never exceed what gRPC takes (a refusal cuts the link);
//   - remote MaxRetryCount 1: a member that is gone is redialled once (2 s)
//     rather than five times, so its watchers hear AddressTerminated
//     soon and operations in flight through it fail at once.
func Configure(node Node, provider protocluster.ClusterProvider) *protocluster.Config {
	if node.Cluster == "" {
		node.Cluster = DefaultCluster
	}
	if node.Host == "" {
		node.Host = "127.0.0.1"
	}
	ropts := cluster.RemoteOptions()
	if node.Advertised != "" {
		ropts = append(ropts, remote.WithAdvertisedHost(node.Advertised))
	}
	rc := remote.Configure(node.Host, node.Port, ropts...)
	rc.MaxRetryCount = 1
	cfg := protocluster.Configure(node.Cluster, provider, disthash.New(), rc, protocluster.WithKinds(node.Kinds...))
	cfg.GossipInterval = time.Hour
	return cfg
}

// Automanaged builds a config over Proto.Actor's automanaged provider: this
// node serves its membership on httpPort and polls peers, the
// host:httpPort of every node of the cluster (this one included), every
// refresh (default 2 s when 0). A node that stops answering is dropped
// from the topology at the next poll.
//
// The provider listens on every interface (it binds 0.0.0.0:httpPort,
// whatever node.Host says; this Proto.Actor version has no setting for
// it), and anyone who reaches that port reads the member list (ids,
// addresses, kinds) at /_health. On a host reachable from other networks,
// firewall httpPort to the cluster's nodes, or use Etcd.
func Automanaged(node Node, httpPort int, refresh time.Duration, peers ...string) (*protocluster.Config, error) {
	if httpPort <= 0 || httpPort > 65535 {
		return nil, fmt.Errorf("zenws/balancer/cluster/membership: Automanaged: the HTTP port must be 1-65535, got %d", httpPort)
	}
	if len(peers) == 0 {
		return nil, errors.New("zenws/balancer/cluster/membership: Automanaged: no peers (list every node's host:port, this one's too)")
	}
	if refresh <= 0 {
		refresh = 2 * time.Second
	}
	return Configure(node, automanaged.NewWithConfig(refresh, httpPort, peers...)), nil
}

// Etcd builds a config over Proto.Actor's etcd provider, with the members
// registered under /zenws/<cluster> on the etcd servers at endpoints
// (host:port). The provider connects to etcd when the member starts.
//
// Two data races of this Proto.Actor version's etcd provider are kept
// away (see etcdProvider): its etcd client is made when the member
// starts, after remote's Start has set gRPC's global logger (made
// earlier, the client's gRPC goroutines read the logger while Start
// writes it); and Shutdown deregisters the member itself rather than
// through the provider's Shutdown, which writes a flag its keep-alive
// goroutine reads without a lock.
func Etcd(node Node, endpoints ...string) (*protocluster.Config, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("zenws/balancer/cluster/membership: Etcd: no endpoints")
	}
	name := node.Cluster
	if name == "" {
		name = DefaultCluster
	}
	return Configure(node, &etcdProvider{base: "/zenws/" + name,
		cfg: clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second}}), nil
}

// etcdProvider is Proto.Actor's etcd provider, made when the member
// starts, and deregistered by a delete of its key.
type etcdProvider struct {
	base string
	cfg  clientv3.Config
	p    *etcd.Provider
	key  string
}

func (e *etcdProvider) start(c *protocluster.Cluster, member bool) error {
	p, err := etcd.NewWithConfig(e.base, e.cfg)
	if err != nil {
		return fmt.Errorf("zenws/balancer/cluster/membership: etcd: %w", err)
	}
	e.p = p
	// The provider's key for this member: base/<cluster>/<cluster>@<id>.
	e.key = e.base + "/" + c.Config.Name + "/" + c.Config.Name + "@" + c.ActorSystem.ID
	if member {
		return p.StartMember(c)
	}
	return p.StartClient(c)
}

func (e *etcdProvider) StartMember(c *protocluster.Cluster) error { return e.start(c, true) }
func (e *etcdProvider) StartClient(c *protocluster.Cluster) error { return e.start(c, false) }

// Shutdown deletes the member's key: the others see it leave at once. The
// provider's keep-alive and watch goroutines run on until the process
// ends (its own Shutdown is a data race, see Etcd), keeping the lease,
// not the key.
func (e *etcdProvider) Shutdown(bool) error {
	if e.key == "" {
		return nil
	}
	cli, err := clientv3.New(e.cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = cli.Delete(ctx, e.key)
	return err
}

// Member is a started cluster member.
type Member struct {
	*protocluster.Cluster
	sub      *eventstream.Subscription
	mu       sync.Mutex
	last     []*protocluster.Member
	downOnce sync.Once
}

// Start starts sys's cluster member on cfg: remote, the provider, the
// identity lookup. Stop it with Shutdown.
func Start(sys *actor.ActorSystem, cfg *protocluster.Config) (m *Member, err error) {
	if sys == nil || cfg == nil {
		return nil, errors.New("zenws/balancer/cluster/membership: Start: nil actor system or config")
	}
	m = &Member{}
	// Subscribed before the member starts, so that no topology is missed:
	// Members reads the last one from here, not from MemberList.
	m.sub = sys.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*protocluster.ClusterTopology); ok {
			m.mu.Lock()
			m.last = append([]*protocluster.Member(nil), t.GetMembers()...)
			m.mu.Unlock()
		}
	})
	defer func() { // StartMember panics where it cannot start (the provider's error)
		if p := recover(); p != nil {
			sys.EventStream.Unsubscribe(m.sub)
			err = fmt.Errorf("zenws/balancer/cluster/membership: Start: %v", p)
		}
	}()
	m.Cluster = protocluster.New(sys, cfg)
	m.Cluster.StartMember()
	return m, nil
}

// Members returns the members of the last topology the provider
// published (this one included). Give it to the agent
// (cluster.WithMembers): unlike the cluster's MemberList it is read under
// a lock.
func (m *Member) Members() []*protocluster.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*protocluster.Member(nil), m.last...)
}

// Shutdown leaves the cluster: the provider deregisters the member (the
// others see it leave at once), then the cluster and remote stop. The
// actor system is yours and stays up (your clients run on it): shut it
// down yourself, after (a deferred sys.Shutdown() does). Call the agent's
// Stop first, so that the others stop sending through this node's clients
// before it goes. Calling it again does nothing.
func (m *Member) Shutdown() {
	m.downOnce.Do(func() {
		c := m.Cluster
		c.ActorSystem.EventStream.Unsubscribe(m.sub)
		_ = c.Config.ClusterProvider.Shutdown(true)
		c.IdentityLookup.Shutdown()
		c.Gossip.Shutdown()
		c.Remote.Shutdown(false)
	})
}
