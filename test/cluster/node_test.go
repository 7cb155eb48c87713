package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/balancer/cluster/budget"
	"github.com/zenws/zenws/balancer/cluster/membership"
	"github.com/zenws/zenws/balancer/opspage"
)

// nodeEnv carries a node's nodeConfig (JSON) to the process started as it.
const nodeEnv = "ZENWS_CLUSTER_NODE"

// nodeConfig is what a node process runs.
type nodeConfig struct {
	Name     string
	Provider string   // "etcd" or "automanaged"
	Etcd     string   // etcd's client host:port
	AutoPort int      // automanaged: this node's HTTP port
	Peers    []string // automanaged: every node's host:AutoPort
	Venue    string   // ws:// URL
	Clients  int
	Port     int         // Proto.Actor remote's port (0: a free one)
	Advert   string      // the host:port the others dial it at (a proxy), if not its own
	Dial     *dialConfig // the dial budget test's clients, started by /dial/start
}

// dialConfig: clients that dial a venue refusing every handshake, paced by
// a dial limiter: the shared budget, or a local window of the same rule.
type dialConfig struct {
	Shared  bool
	Key     string
	Window  time.Duration
	Burst   int
	Share   int
	Clients int
	URL     string
}

// node is a running node process.
type node struct {
	cfg     nodeConfig
	sys     *actor.ActorSystem
	m       *membership.Member
	agent   *cluster.Agent
	bal     *balancer.Balancer
	clients []*actors.Client
	tr      *load
	budget  *budget.Service
	dialers []*actors.Client
}

// nodeMain runs a node until /quit (or a signal): it prints its control
// address and remote address on one line, "READY <control> <remote>".
func nodeMain(raw string) int {
	var cfg nodeConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "node config:", err)
		return 2
	}
	n, err := startNode(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, cfg.Name+":", err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	quit := make(chan struct{})
	srv := &http.Server{Handler: n.handler(quit), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("READY %s %s\n", ln.Addr(), n.sys.Address())
	<-quit
	_ = srv.Close()
	n.stop()
	return 0
}

func startNode(cfg nodeConfig) (*node, error) {
	n := &node{cfg: cfg, sys: actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))}
	where := membership.Node{Cluster: "zenws-test", Port: cfg.Port, Advertised: cfg.Advert}
	var pcfg *protocluster.Config
	var err error
	switch cfg.Provider {
	case "etcd":
		pcfg, err = membership.Etcd(where, cfg.Etcd)
	case "automanaged":
		pcfg, err = membership.Automanaged(where, cfg.AutoPort, 300*time.Millisecond, cfg.Peers...)
	default:
		err = fmt.Errorf("unknown provider %q", cfg.Provider)
	}
	if err != nil {
		return nil, err
	}
	if n.m, err = membership.Start(n.sys, pcfg); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Clients; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := actors.Connect(ctx, n.sys, cfg.Venue, actors.WithRetryDelay(20*time.Millisecond),
			actors.WithMaxBackoff(200*time.Millisecond), actors.WithRetryCount(1000))
		cancel()
		if err != nil {
			return nil, err
		}
		n.clients = append(n.clients, c)
	}
	if n.agent, err = cluster.Start(n.m.Cluster, n.discover, cluster.WithMembers(n.m.Members),
		cluster.WithSyncInterval(200*time.Millisecond), cluster.WithFlushInterval(20*time.Millisecond), cluster.WithLogger(debugLogger())); err != nil {
		return nil, err
	}
	if n.bal, err = balancer.New(n.sys, balancer.WithDiscovery(n.agent.Discovery),
		balancer.WithResolver(n.agent.Resolve), balancer.WithDiscoveryInterval(time.Second)); err != nil {
		return nil, err
	}
	n.agent.OnChange(n.bal.Invalidate)
	if cfg.Dial != nil && cfg.Dial.Shared {
		if n.budget, err = budget.Start(n.sys, n.m.Members, budget.WithOut(n.agent.Expelled())); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// startDialers starts the dial budget test's clients.
func (n *node) startDialers() error {
	d := n.cfg.Dial
	var l *ratelimit.Limiter
	var err error
	if d.Shared {
		l, err = n.budget.Limiter(budget.Rule{Key: d.Key, Window: d.Window, Burst: d.Burst, Share: d.Share,
			AskTimeout: 300 * time.Millisecond})
	} else {
		l, err = ratelimit.New("local", nil, ratelimit.Bucket{Name: "connections", Window: d.Window, Burst: d.Burst})
	}
	if err != nil {
		return err
	}
	for i := 0; i < d.Clients; i++ {
		cfg, err := actors.NewConfig(d.URL, actors.WithRetryCount(actors.RetryForever),
			actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(50*time.Millisecond))
		if err != nil {
			return err
		}
		cfg.DialLimiter, cfg.HostDialRate = l, 0
		c, err := actors.Spawn(n.sys.Root, cfg)
		if err != nil {
			return err
		}
		n.dialers = append(n.dialers, c)
	}
	return nil
}

func (n *node) discover() []*actor.PID {
	out := make([]*actor.PID, 0, len(n.clients))
	for _, c := range n.clients {
		out = append(out, c.PID())
	}
	return out
}

// stop leaves the cluster the clean way: traffic, balancer, agent (the
// others stop using this node's clients), clients, cluster.
func (n *node) stop() {
	if n.tr != nil {
		n.tr.halt()
	}
	if n.budget != nil {
		n.budget.Stop() // ends the dialers' waits for a slot, and them
	}
	for _, c := range n.dialers {
		_ = c.Close()
	}
	_ = n.bal.Stop()
	_ = n.agent.Stop()
	for _, c := range n.clients {
		_ = c.Close()
	}
	n.m.Shutdown()
	n.sys.Shutdown()
}

// poolView is a node's table as /pool returns it.
type poolView struct {
	Local    int            // this node's clients, eligible
	Remote   map[string]int // eligible remote clients by member address
	Stats    cluster.Stats  // the agent's
	Balancer int            // clients in the balancer's table
	Holder   string         // the dial budget's holder, as this node sees it
	Budget   budget.Stats   // the dial budget's counters on this node
}

func (n *node) pool() poolView {
	v := poolView{Remote: map[string]int{}, Stats: n.agent.Stats()}
	if n.budget != nil {
		v.Holder, v.Budget = n.budget.Holder(), n.budget.Stats(n.cfg.Dial.Key)
	}
	for _, ch := range n.bal.PoolHealth() {
		v.Balancer++
		switch {
		case !ch.Eligible:
		case ch.Remote:
			v.Remote[ch.PID.Address]++
		default:
			v.Local++
		}
	}
	return v
}

// endpointVia is an endpoint for one client of the member at address
// ("local": this node's first client).
func (n *node) endpointVia(address string) (balancer.Endpoint, error) {
	if address == "local" {
		return n.clients[0], nil
	}
	for _, ch := range n.bal.PoolHealth() {
		if ch.Remote && ch.PID.Address == address {
			if ep, ok := n.agent.Resolve(ch.PID); ok {
				return ep, nil
			}
		}
	}
	return nil, fmt.Errorf("no client of %s in the table", address)
}

func (n *node) handler(quit chan struct{}) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/pool", func(w http.ResponseWriter, _ *http.Request) { reply(w, n.pool()) })
	// The operator's page, with the liveness a Kubernetes probe would ask:
	// it fails once another member took this one out of the cluster.
	mux.Handle("/zenws/", opspage.New(n.sys, map[string]*balancer.Balancer{"pool": n.bal},
		opspage.WithLivenessCheck("cluster", n.agent.Check)))
	mux.HandleFunc("/traffic/start", func(w http.ResponseWriter, r *http.Request) {
		workers, _ := strconv.Atoi(r.URL.Query().Get("workers"))
		n.tr = startLoad(n.bal, n.cfg.Name, workers)
		reply(w, "started")
	})
	mux.HandleFunc("/traffic", func(w http.ResponseWriter, _ *http.Request) { reply(w, n.tr.report()) })
	mux.HandleFunc("/traffic/stop", func(w http.ResponseWriter, _ *http.Request) { n.tr.halt(); reply(w, n.tr.report()) })
	// /order?via=<address>&id=<order id>&timeout=<ms>: one order (a
	// non-retry-safe call) through a client of that member.
	mux.HandleFunc("/order", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ms, _ := strconv.Atoi(q.Get("timeout"))
		ep, err := n.endpointVia(q.Get("via"))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
			_, err = ep.Call(ctx, "test/buy", map[string]string{"id": q.Get("id")})
			cancel()
		}
		res := orderResult{Timeout: errors.Is(err, actors.ErrTimeout)}
		if err != nil {
			res.Err = err.Error()
		}
		reply(w, res)
	})
	// /bench?via=<address>&n=<calls>: sequential calls through one client.
	mux.HandleFunc("/bench", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		calls, _ := strconv.Atoi(q.Get("n"))
		workers, _ := strconv.Atoi(q.Get("workers"))
		ep, err := n.endpointVia(q.Get("via"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		reply(w, bench(ep, calls, max(1, workers)))
	})
	mux.HandleFunc("/dial/start", func(w http.ResponseWriter, _ *http.Request) {
		if err := n.startDialers(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		reply(w, "started")
	})
	mux.HandleFunc("/quit", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, "bye")
		close(quit)
	})
	return mux
}

type orderResult struct {
	Err     string
	Timeout bool
}

// benchResult: sequential calls through one endpoint.
type benchResult struct {
	Calls    int
	PerSec   float64
	P50, P99 time.Duration
}

// bench makes calls through ep from workers goroutines, calls/workers
// each, and measures the rate and the latency of each call.
func bench(ep balancer.Endpoint, calls, workers int) benchResult {
	var mu sync.Mutex
	lat := make([]time.Duration, 0, calls)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls/workers; i++ {
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := ep.Call(ctx, "public/get_time", nil)
				cancel()
				if err == nil {
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res := benchResult{Calls: len(lat), PerSec: float64(len(lat)) / took.Seconds()}
	if len(lat) > 0 {
		res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res
}

// load is a node's balanced traffic: workers making retry-safe calls and
// retry-safe sends, and one worker placing orders (not retry-safe, each
// with its own id).
type load struct {
	stop chan struct{}
	wg   sync.WaitGroup

	calls, callsFailed, sends, sendsFailed atomic.Int64
	mu                                     sync.Mutex
	firstErr                               string
	ordersOK                               []string
	ordersFailed                           map[string]string // id -> error
}

type loadReport struct {
	Calls, CallsFailed, Sends, SendsFailed int64
	FirstErr                               string
	OrdersOK                               []string
	OrdersFailed                           map[string]string
}

func startLoad(b *balancer.Balancer, name string, workers int) *load {
	l := &load{stop: make(chan struct{}), ordersFailed: map[string]string{}}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; l.running(); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if i%4 == 3 {
					err := b.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/hello"}`), balancer.RetrySafe())
					l.count(&l.sends, &l.sendsFailed, err)
				} else {
					_, err := b.Call(ctx, "public/get_time", nil)
					l.count(&l.calls, &l.callsFailed, err)
				}
				cancel()
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; l.running(); i++ {
			id := fmt.Sprintf("%s-%d", name, i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := b.Call(ctx, "test/buy", map[string]string{"id": id})
			cancel()
			l.mu.Lock()
			if err != nil {
				l.ordersFailed[id] = err.Error()
			} else {
				l.ordersOK = append(l.ordersOK, id)
			}
			l.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return l
}

func (l *load) running() bool {
	select {
	case <-l.stop:
		return false
	default:
		return true
	}
}

func (l *load) count(ok, failed *atomic.Int64, err error) {
	if err == nil {
		ok.Add(1)
		return
	}
	failed.Add(1)
	l.mu.Lock()
	if l.firstErr == "" {
		l.firstErr = err.Error()
	}
	l.mu.Unlock()
}

func (l *load) halt() {
	if l == nil {
		return
	}
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *load) report() loadReport {
	if l == nil {
		return loadReport{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := loadReport{Calls: l.calls.Load(), CallsFailed: l.callsFailed.Load(), Sends: l.sends.Load(),
		SendsFailed: l.sendsFailed.Load(), FirstErr: l.firstErr, OrdersFailed: map[string]string{}}
	r.OrdersOK = append(r.OrdersOK, l.ordersOK...)
	for k, v := range l.ordersFailed {
		r.OrdersFailed[k] = v
	}
	return r
}

func debugLogger() *zap.Logger {
	if os.Getenv("ZENWS_DEBUG_AGENT") == "" {
		return zap.NewNop()
	}
	l, _ := zap.NewDevelopment()
	return l
}
