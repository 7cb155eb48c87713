package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// scenarioEnv marks a process started by inProcess.
const scenarioEnv = "ZENWS_CLUSTER_SCENARIO"

// inProcess runs scenario in a fresh process of this test binary (the
// test of the same name, alone). Every remote.Start of Proto.Actor sets
// gRPC's global logger without a lock, so starting a member in a process
// where gRPC goroutines already ran (a previous test's) is a data race
// under -race; in a process of its own, a scenario starts its members
// before anything else uses gRPC. The child runs under the same flags
// (race detector, leak check); its output is shown when it fails.
func inProcess(t *testing.T, scenario func(t *testing.T)) {
	if os.Getenv(scenarioEnv) == "1" {
		scenario(t)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t, 90*time.Second)
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), scenarioEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in its own process: %v\n%s", t.Name(), err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "cluster_test.go:") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// member is one cluster member of a test: its own actor system with remote
// on a free 127.0.0.1 port, its agent, and its clients on their own
// servers.
type member struct {
	name    string
	sys     *actor.ActorSystem
	c       *protocluster.Cluster
	agent   *cluster.Agent
	servers []*wstest.Server
	calls   []*atomic.Int64 // public/get_time answered, per server
	clients []*actors.Client

	mu   sync.Mutex
	pids []*actor.PID // what the agent's discovery returns

	down   atomic.Bool // it left the cluster
	killed atomic.Bool // its remote server was killed
	probe  net.Conn    // see syncGRPCLogger
}

// startMembers starts one member per count, each with that many clients,
// and its agent; everything is stopped when the test ends. Members start
// one after the other: remote's Start sets gRPC's global logger without a
// lock.
func startMembers(t *testing.T, counts ...int) []*member {
	t.Helper()
	provider := clustertest.NewInMemAgent()
	var ms []*member
	t.Cleanup(func() { stopMembers(t, ms) })
	for i := range counts {
		m := &member{name: fmt.Sprintf("member%d", i)}
		m.startCluster(provider)
		ms = append(ms, m)
	}
	for i, n := range counts {
		ms[i].startClients(t, n)
		agent, err := cluster.Start(ms[i].c, ms[i].discover, cluster.WithSyncInterval(200*time.Millisecond),
			cluster.WithFlushInterval(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ms[i].agent = agent
	}
	return ms
}

func (m *member) startCluster(provider *clustertest.InMemAgent) {
	if m.sys == nil { // else: made by the test, with clients started before the member
		m.sys = actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	}
	rc := remote.Configure("127.0.0.1", 0, cluster.RemoteOptions()...)
	rc.MaxRetryCount = 1 // a dead member's address is given up on after one dial and 2 s
	cfg := protocluster.Configure("zenws-test", clustertest.NewTestProvider(provider), disthash.New(), rc)
	// Proto.Actor's gossip serializes its state on the remote writer's
	// goroutine while the gossip actor changes it (a data race in this
	// version); the agent does not use gossip, so it ticks once an hour.
	cfg.GossipInterval = time.Hour
	m.c = protocluster.New(m.sys, cfg)
	m.c.StartMember()
	m.syncGRPCLogger()
}

// syncGRPCLogger orders this member's gRPC server after the test
// goroutine, for the race detector. Every remote.Start sets gRPC's global
// logger without a lock, and the server goroutine of a member started
// earlier read it when it began serving: with no synchronisation between
// the two, starting a second member in one process is a data race. A
// socket read synchronises with every earlier socket write (the race
// detector's model of I/O), so the test goroutine reads the first bytes
// the server writes on a fresh connection (its HTTP/2 settings, sent by a
// goroutine the server goroutine started after its read). The connection
// stays open until the member stops (closeProbe): the server's handshake
// goroutine logs when it ends, and must see the later starts too.
func (m *member) syncGRPCLogger() {
	conn, err := net.DialTimeout("tcp", m.sys.Address(), 5*time.Second)
	if err != nil {
		panic(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		panic(err)
	}
	m.probe = conn
}

// closeProbe ends the probe connection (a gRPC server's Stop waits for
// it): one byte first, so that the handshake goroutine, which logs as it
// fails, is ordered after everything the test goroutine did.
func (m *member) closeProbe() {
	if m.probe != nil {
		_, _ = m.probe.Write([]byte{0})
		_ = m.probe.Close()
		m.probe = nil
	}
}

func (m *member) startClients(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		calls := new(atomic.Int64)
		srv := wstest.NewServer(wstest.WithDeribit(),
			wstest.WithResponder("public/get_time", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
				calls.Add(1)
				return time.Now().UnixMilli(), nil
			}),
			wstest.WithResponder("test/fail", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
				return nil, &wstest.RPCError{Code: 10009, Message: "not_enough_funds", Data: map[string]int{"need": 5}}
			}),
			wstest.WithResponder("test/slow", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
				time.Sleep(300 * time.Millisecond)
				return "late", nil
			}))
		c, err := actors.Connect(testutil.Context(t, 10*time.Second), m.sys, srv.URL(),
			actors.WithRetryDelay(20*time.Millisecond), actors.WithMaxBackoff(100*time.Millisecond), actors.WithRetryCount(1000))
		if err != nil {
			srv.Close()
			t.Fatal(err)
		}
		m.servers = append(m.servers, srv)
		m.calls = append(m.calls, calls)
		m.clients = append(m.clients, c)
		m.mu.Lock()
		m.pids = append(m.pids, c.PID())
		m.mu.Unlock()
	}
}

func (m *member) discover() []*actor.PID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*actor.PID(nil), m.pids...)
}

// drop takes a client out of the member's discovery.
func (m *member) drop(pid *actor.PID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.pids {
		if p.Equal(pid) {
			m.pids = append(m.pids[:i], m.pids[i+1:]...)
			return
		}
	}
}

func (m *member) served() int64 {
	var n int64
	for _, c := range m.calls {
		n += c.Load()
	}
	return n
}

// leave takes the member out of the cluster the clean way: its agent
// leaves first (the others stop sending through its clients, and what is
// in flight is answered), then what cluster.Shutdown(true) does, without
// its 2 s hand-over sleep and with remote's hard stop rather than its
// graceful one, which in this Proto.Actor version writes the endpoint
// reader's suspended flag and the endpoint manager's connections without
// a lock while peers are connected (data races).
func (m *member) leave() {
	m.closeProbe()
	m.down.Store(true)
	if m.agent != nil {
		_ = m.agent.Stop()
		settle()
	}
	m.leaveCluster()
}

// settle lets the messages a stopping agent sent land (the Terminated of
// its remote watchers among them: Proto.Actor may open a connection to
// deliver it) and orders them before what the test goroutine does next.
// Proto.Actor's block list is written without a lock when a member
// leaves and read when a connection opens; a socket read synchronises
// with every earlier socket write in the race detector's model, so one
// read on a pipe here orders the connection's checks before the leave.
func settle() {
	time.Sleep(200 * time.Millisecond)
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := w.Write([]byte{0}); err != nil {
		panic(err)
	}
	if _, err := r.Read(make([]byte, 1)); err != nil {
		panic(err)
	}
}

func (m *member) leaveCluster() {
	c := m.c
	_ = c.Config.ClusterProvider.Shutdown(true) // deregisters: the others see it leave
	c.IdentityLookup.Shutdown()
	c.Gossip.Shutdown()
	c.ActorSystem.Shutdown()
	c.Remote.Shutdown(false)
}

// kill stops the member's remote server at once, without leaving: to the
// others it is a crashed process. The provider still lists it.
func (m *member) kill() {
	m.closeProbe()
	m.killed.Store(true)
	m.c.Remote.Shutdown(false)
}

// stopMembers stops agents, clients and clusters, the last started first.
func stopMembers(t *testing.T, ms []*member) {
	// A killed member's agent still runs: stop it while the others can
	// hear it.
	for _, m := range ms {
		if m.killed.Load() && m.agent != nil {
			if err := m.agent.Stop(); err != nil {
				t.Errorf("%s: agent Stop: %v", m.name, err)
			}
			settle()
		}
	}
	for i := len(ms) - 1; i >= 0; i-- {
		switch m := ms[i]; {
		case m.killed.Load():
		case !m.down.Load():
			m.leave()
		}
	}
	for _, m := range ms {
		if m.killed.Load() {
			m.leaveCluster()
		}
		for _, c := range m.clients {
			_ = c.Close()
		}
		for _, s := range m.servers {
			s.Close()
		}
	}
	waitRedials(t)
}

// waitRedials waits for Proto.Actor's endpoint writers that are dialing a
// departed member: a writer makes MaxRetryCount attempts 2 s apart before
// it gives up (a Terminated a member sends about itself as it goes is
// enough to start one).
func waitRedials(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if !strings.Contains(string(buf[:n]), "remote.(*endpointWriter).initialize(") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("Proto.Actor's endpoint writers still dialing after 10 s")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newBalancer is a balancer on m over every member's clients.
func (m *member) newBalancer(t *testing.T, opts ...balancer.Option) *balancer.Balancer {
	t.Helper()
	b, err := balancer.New(m.sys, append([]balancer.Option{
		balancer.WithDiscovery(m.agent.Discovery),
		balancer.WithResolver(m.agent.Resolve),
		balancer.WithDiscoveryInterval(time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cancel := m.agent.OnChange(b.Invalidate)
	t.Cleanup(func() { cancel(); _ = b.Stop() })
	return b
}

type poolCount struct{ all, eligible, remote, remoteEligible int }

func count(b *balancer.Balancer) poolCount {
	var pc poolCount
	for _, ch := range b.PoolHealth() {
		pc.all++
		if ch.Eligible {
			pc.eligible++
		}
		if ch.Remote {
			pc.remote++
			if ch.Eligible {
				pc.remoteEligible++
			}
		}
	}
	return pc
}

func waitPool(t *testing.T, b *balancer.Balancer, want poolCount) {
	t.Helper()
	var last poolCount
	deadline := time.Now().Add(10 * time.Second)
	for {
		if last = count(b); last == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool: got %+v, want %+v", last, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// traffic runs balanced retry-safe calls from several goroutines until
// stopped, and counts the outcomes.
type traffic struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []error
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startTraffic(t *testing.T, b *balancer.Balancer, workers int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := b.Call(ctx, "public/get_time", nil)
				cancel()
				if err != nil {
					tr.failed.Add(1)
					tr.mu.Lock()
					tr.errs = append(tr.errs, err)
					tr.mu.Unlock()
				} else {
					tr.ok.Add(1)
				}
			}
		}()
	}
	t.Cleanup(tr.halt)
	return tr
}

func (tr *traffic) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
}

// waitCalls waits until n more calls succeeded.
func (tr *traffic) waitCalls(t *testing.T, n int64, what string) {
	t.Helper()
	target := tr.ok.Load() + n
	testutil.Eventually(t, 10*time.Second, what, func() bool { return tr.ok.Load() >= target })
}

func (tr *traffic) check(t *testing.T) {
	t.Helper()
	tr.halt()
	if f := tr.failed.Load(); f > 0 {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		t.Fatalf("%d of %d retry-safe calls failed; first: %v", f, f+tr.ok.Load(), tr.errs[0])
	}
}
