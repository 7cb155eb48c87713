package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/balancer/cluster/membership"
	"github.com/zenws/zenws/balancer/opspage"
	"github.com/zenws/zenws/supervision"
)

// nodeEnv carries a node's nodeSpec (JSON) to a process of this binary
// started by -nodes: with it set, the process is that node, not the demo.
const nodeEnv = "ZENWS_DEMO_NODE"

// nodeSpec is what one node process runs.
type nodeSpec struct {
	Name       string   // n1, n2, ...
	Nodes      int      // how many nodes the cluster has
	Clients    int      // this node's clients (one simulated venue each)
	RemotePort int      // Proto.Actor remote's port
	AutoPort   int      // the automanaged provider's HTTP port
	Peers      []string // every node's 127.0.0.1:AutoPort
	HTTP       string   // serve the operator's page here ("" none)
	LogFile    string
	LogLevel   string
	Strategy   string
	Refresh    time.Duration
}

// nodeStatus is what a node prints on stdout, one JSON line every refresh,
// and a last one (Final) when the parent says "end".
type nodeStatus struct {
	Node        string         `json:"node"`
	Address     string         `json:"address"` // its remote address, as the others' tables name it
	Calls       int64          `json:"calls"`
	Failed      int64          `json:"failed"`
	Hung        int64          `json:"hung"`
	Failovers   uint64         `json:"failovers"`
	LocalPicks  uint64         `json:"local_picks"`  // balanced operations through its own clients
	RemotePicks uint64         `json:"remote_picks"` // through other nodes' clients
	Served      uint64         `json:"served"`       // operations it ran for other nodes
	RemoteBy    map[string]int `json:"remote_by"`    // other nodes' clients in its table, by remote address
	Connected   int            `json:"connected"`    // its own clients connected
	Clients     int            `json:"clients"`
	Final       bool           `json:"final,omitempty"`
	Problems    []string       `json:"problems,omitempty"`
}

// nodeMain runs a node: it prints a status line every refresh, finishes
// (final checks, a final line) on "end" on stdin, and leaves when stdin
// closes (the parent stopped, or died): a node never outlives its parent.
func nodeMain(raw string) int {
	var spec nodeSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "demo node:", err)
		return 2
	}
	// Ctrl-C reaches the whole process group: the parent decides, through
	// stdin, when and how its nodes stop.
	signal.Ignore(os.Interrupt)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	defer signal.Stop(term)
	lines := make(chan string)
	go func() { // never joined: it ends with stdin, or with the process
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	n, err := startDemoNode(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo node %s: %v\n", spec.Name, err)
		return 1
	}
	code := n.serve(lines, term)
	// Leaving must not hang the node past its parent: a bound on the stop.
	t := time.AfterFunc(15*time.Second, func() { os.Exit(1) })
	n.stop()
	t.Stop()
	return code
}

// demoNode is one node's run: the demo's clients on their own simulated
// venues, a cluster member, its agent and a balancer over all nodes'
// clients.
type demoNode struct {
	spec     nodeSpec
	d        *demo
	m        *membership.Member
	agent    *cluster.Agent
	http     *http.Server
	out      *json.Encoder
	seen     map[string]uint64 // remote client -> its most picks seen (clients that left keep their count)
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeLog func()
	paLevel  zap.AtomicLevel // Proto.Actor's logs: silenced as the node stops
}

func startDemoNode(spec nodeSpec) (n *demoNode, err error) {
	cfg := config{clients: spec.Clients, logLevel: spec.LogLevel, logFile: spec.LogFile, strategy: spec.Strategy, refresh: spec.Refresh}
	n = &demoNode{spec: spec, d: &demo{cfg: cfg, names: map[string]string{}}, out: json.NewEncoder(os.Stdout), seen: map[string]uint64{}}
	d := n.d
	d.lastFault.Store("none")
	if d.log, n.closeLog, _, err = newLogger(cfg, os.Stderr); err != nil {
		return nil, err
	}
	// Proto.Actor's own logs, quiet once this node stops: the nodes stop
	// together, and each one's remote would log the others' connections
	// ending as errors.
	level, _ := parseLevel(cfg.logLevel) // the logger's own: IncreaseLevel may only raise it
	n.paLevel = zap.NewAtomicLevelAt(level)
	d.sys = actor.NewActorSystem(actors.ActorSystemLogger(d.log.WithOptions(zap.IncreaseLevel(n.paLevel))))
	pcfg, err := membership.Automanaged(membership.Node{Cluster: "zenws-demo", Port: spec.RemotePort}, spec.AutoPort, 300*time.Millisecond, spec.Peers...)
	if err != nil {
		return nil, err
	}
	if n.m, err = membership.Start(d.sys, pcfg); err != nil {
		return nil, err
	}
	if d.sup, err = supervision.Start(d.sys, supervision.WithLogger(d.log)); err != nil {
		return nil, err
	}
	if err := d.startClients(context.Background(), nil); err != nil {
		return nil, err
	}
	if n.agent, err = cluster.Start(n.m.Cluster, d.sup.ListClients, cluster.WithMembers(n.m.Members), cluster.WithLogger(d.log),
		cluster.WithSyncInterval(200*time.Millisecond), cluster.WithFlushInterval(20*time.Millisecond)); err != nil {
		return nil, err
	}
	opts := []balancer.Option{balancer.WithLogger(d.log), balancer.WithDiscovery(n.agent.Discovery),
		balancer.WithResolver(n.agent.Resolve), balancer.WithDiscoveryInterval(time.Second)}
	if spec.Strategy == "health-score" {
		opts = append(opts, balancer.WithStrategy(balancer.HealthScore))
	}
	if d.bal, err = balancer.New(d.sys, opts...); err != nil {
		return nil, err
	}
	n.agent.OnChange(d.bal.Invalidate)
	if spec.HTTP != "" {
		if err := n.servePage(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// servePage serves the operator's page over this node's balancer (its own
// clients and every other node's) at /zenws/.
func (n *demoNode) servePage() error {
	ln, err := net.Listen("tcp", n.spec.HTTP)
	if err != nil {
		return fmt.Errorf("-http: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/zenws/", opspage.New(n.d.sys, map[string]*balancer.Balancer{"demo": n.d.bal}, opspage.WithAutoRefresh(2*time.Second),
		opspage.WithLivenessCheck("cluster", n.agent.Check))) // livez fails once this node was taken out of the cluster
	mux.Handle("/", http.RedirectHandler("/zenws/", http.StatusFound))
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.d.log.Error("operator's page", zap.Error(err))
		}
	}()
	return nil
}

// serve makes balanced calls and reports until stdin closes or says "end".
func (n *demoNode) serve(lines <-chan string, term <-chan os.Signal) int {
	var ctx context.Context
	ctx, n.cancel = context.WithCancel(context.Background())
	for i := 0; i < callersPer*len(n.d.clients); i++ {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.d.caller(ctx) }()
	}
	t := time.NewTicker(n.spec.Refresh)
	defer t.Stop()
	n.report(nil, false)
	for {
		select {
		case <-t.C:
			n.report(nil, false)
		case <-term:
			return 0
		case l, ok := <-lines:
			if !ok {
				return 0
			}
			if l == "end" {
				n.finish()
			}
		}
	}
}

// finish stops the calls and checks the node: its clients connected and
// subscribed with notifications flowing, and every other node's clients in
// its table.
func (n *demoNode) finish() {
	n.cancel()
	n.wg.Wait()
	d := n.d
	before := make([]int64, len(d.clients))
	for i := range d.clients {
		before[i] = d.notif[i].Load()
	}
	want := (n.spec.Nodes - 1) * n.spec.Clients
	deadline := time.Now().Add(5 * time.Second)
	var problems []string
	for {
		problems = d.checkRestored(before)
		if got := n.remoteEligible(); got != want {
			problems = append(problems, fmt.Sprintf("%d of the other nodes' %d clients eligible in its table", got, want))
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.report(problems, true)
}

func (n *demoNode) remoteEligible() int {
	k := 0
	for _, ch := range n.d.bal.PoolHealth() {
		if ch.Remote && ch.Eligible {
			k++
		}
	}
	return k
}

func (n *demoNode) report(problems []string, final bool) {
	d := n.d
	s := nodeStatus{Node: n.spec.Name, Address: d.sys.Address(), Calls: d.calls.Load(), Failed: d.failed.Load(), Hung: d.hung.Load(),
		Failovers: d.bal.Stats().Failovers, Served: n.agent.Stats().Served, RemoteBy: map[string]int{},
		Clients: len(d.clients), Final: final, Problems: problems}
	for _, ch := range d.bal.PoolHealth() {
		if !ch.Remote {
			s.LocalPicks += ch.Picks
			continue
		}
		k := ch.PID.Address + "/" + ch.PID.Id
		n.seen[k] = max(n.seen[k], ch.Picks)
		if ch.Eligible {
			s.RemoteBy[ch.PID.Address]++
		}
	}
	for _, p := range n.seen {
		s.RemotePicks += p
	}
	for _, c := range d.clients {
		if c.State() == actors.StateConnected {
			s.Connected++
		}
	}
	_ = n.out.Encode(s) // a parent gone: stdin closes too, and the node leaves
}

// stop leaves the clean way: calls, page, balancer, agent (the others stop
// using this node's clients), clients, cluster, venues.
func (n *demoNode) stop() {
	n.paLevel.SetLevel(zapcore.FatalLevel)
	if n.cancel != nil {
		n.cancel()
		n.wg.Wait()
	}
	if n.http != nil {
		_ = n.http.Close()
	}
	d := n.d
	if d.bal != nil {
		_ = d.bal.Stop()
	}
	if n.agent != nil {
		_ = n.agent.Stop()
	}
	if d.sup != nil {
		_ = d.sup.Stop()
	}
	if n.m != nil {
		n.m.Shutdown()
	}
	if d.sys != nil {
		d.sys.Shutdown()
	}
	d.stopServers()
	if n.closeLog != nil {
		n.closeLog()
	}
}
