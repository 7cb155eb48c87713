package review16

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
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
	"github.com/zenws/zenws/transport/wstest"
)

const nodeEnv = "ZENWS_REVIEW16_NODE"

// nodeConfig is one node, built from the docs (docs/balancing.md, "Across
// machines"), not from test/cluster's helpers.
type nodeConfig struct {
	RemotePort int      // Proto.Actor remote
	AutoPort   int      // automanaged membership HTTP
	Peers      []string // every node's 127.0.0.1:AutoPort
	Label      string   // its clients' venue label
	Clients    int
	// Degrade subscribes each client to a channel its venue refuses (the
	// client is Degraded, picked only when nothing better is there), and
	// drops its connection once (so it has a LastError).
	Degrade bool
	// PagePort, when set: serve the operator's page of its balancer (over
	// every node's clients) at 127.0.0.1:PagePort/zenws/, readiness asking
	// for MinHealthy of Label.
	PagePort   int
	MinHealthy int
	// Advertised: the host:port the others dial for this node's remote
	// (a proxy of the test's).
	Advertised string
	// Etcd, when set: membership over etcd at this host:port instead of
	// automanaged.
	Etcd string
	// ClientsFirst connects the clients before the member starts (its
	// remote): finding 11.
	ClientsFirst bool
	// Budget, when its Key is set: a budget.Service and a limiter of this
	// rule, drawn by /ctl/dial?n=N (the times each attempt was let
	// through, unix ns) and /ctl/holder.
	Budget budget.Rule
	// ShutdownTwice: start the member, leave (Member.Shutdown), then
	// sys.Shutdown as README's quick start defers it; print what happened.
	ShutdownTwice bool
	// DefaultReadiness: the page's readiness as opspage.New's defaults
	// (no WithReadiness).
	DefaultReadiness bool
	// VenueURL, when set: the clients connect there (a venue of the test
	// process that counts orders) instead of the node's own.
	VenueURL string
}

// callsReport is what /ctl/calls answers.
type callsReport struct {
	OK, Failed int
	Errors     []string
}

// runNode is the node process: it prints "READY" once its clients are
// up, and leaves when its stdin closes.
func runNode(raw string) int {
	var cfg nodeConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Println("FAIL config:", err)
		return 2
	}
	if err := node(cfg); err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	return 0
}

// shutdownTwice is the ShutdownTwice mode.
func shutdownTwice(cfg nodeConfig) (out string) {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	mcfg, err := membership.Automanaged(membership.Node{Port: cfg.RemotePort}, cfg.AutoPort, 300*time.Millisecond, cfg.Peers...)
	if err != nil {
		return "FAIL " + err.Error()
	}
	m, err := membership.Start(sys, mcfg)
	if err != nil {
		return "FAIL " + err.Error()
	}
	m.Shutdown()
	defer func() {
		if v := recover(); v != nil {
			out = fmt.Sprintf("PANIC %v", v)
		}
	}()
	sys.Shutdown()
	return "OK"
}

func node(cfg nodeConfig) error {
	if cfg.ShutdownTwice {
		fmt.Println("READY " + shutdownTwice(cfg))
		return nil
	}
	log := zap.NewNop()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(log))
	// Not deferred: sys.Shutdown, as README's quick start does it, panics
	// once Member.Shutdown has run (it shuts the actor system down too).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithReadLimit(64<<20), wstest.WithResponder("public/get_time",
		func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) { return time.Now().UnixMilli(), nil }),
		wstest.WithResponder("public/subscribe",
			func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
				var p struct{ Channels []string }
				_ = json.Unmarshal(params, &p)
				var ok []string
				for _, ch := range p.Channels {
					if strings.HasPrefix(ch, "bad.") {
						return nil, &wstest.RPCError{Code: 10001, Message: "refused: " + ch}
					}
					ok = append(ok, ch)
				}
				return c.Subscribe(ok...), nil
			}))
	defer srv.Close()
	// The clients: connected after the member started (ClientsFirst:
	// before, as a user who connects to the venues first would).
	var pidsMu sync.Mutex
	var pids []*actor.PID
	var closers []*actors.Client
	listPIDs := func() []*actor.PID {
		pidsMu.Lock()
		defer pidsMu.Unlock()
		return append([]*actor.PID(nil), pids...)
	}
	connectClients := func() error {
		for i := 0; i < cfg.Clients; i++ {
			url := srv.URL()
			if cfg.VenueURL != "" {
				url = cfg.VenueURL
			}
			c, err := actors.Connect(ctx, sys, url, actors.WithLabel(cfg.Label), actors.WithLogger(log),
				actors.WithRetryCount(actors.RetryForever), actors.WithRetryDelay(20*time.Millisecond),
				actors.WithMaxBackoff(200*time.Millisecond))
			if err != nil {
				return err
			}
			closers = append(closers, c)
			chans := []string{"ticker.ok"}
			if cfg.Degrade {
				chans = append(chans, "bad.channel")
			}
			_ = c.Subscribe(ctx, chans...) // a *PartialError when degraded
			pidsMu.Lock()
			pids = append(pids, c.PID())
			pidsMu.Unlock()
		}
		if cfg.Degrade {
			srv.DropAll()
		}
		return nil
	}
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	if cfg.ClientsFirst {
		if err := connectClients(); err != nil {
			return err
		}
	}

	mnode := membership.Node{Port: cfg.RemotePort, Advertised: cfg.Advertised}
	var mcfg *protocluster.Config
	var err error
	if cfg.Etcd != "" {
		mcfg, err = membership.Etcd(mnode, cfg.Etcd)
	} else {
		mcfg, err = membership.Automanaged(mnode, cfg.AutoPort, 300*time.Millisecond, cfg.Peers...)
	}
	if err != nil {
		return err
	}
	m, err := membership.Start(sys, mcfg)
	if err != nil {
		return err
	}
	defer m.Shutdown()
	agent, err := cluster.Start(m.Cluster, listPIDs, cluster.WithMembers(m.Members),
		cluster.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = agent.Stop() }()
	b, err := balancer.New(sys, balancer.WithDiscovery(agent.Discovery), balancer.WithResolver(agent.Resolve),
		balancer.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = b.Stop() }()
	stopChange := agent.OnChange(b.Invalidate)
	defer stopChange()
	if !cfg.ClientsFirst {
		if err := connectClients(); err != nil {
			return err
		}
		agent.Invalidate()
		b.Invalidate()
	}

	if cfg.PagePort != 0 {
		mux := http.NewServeMux()
		popts := []opspage.Option{opspage.WithLivenessCheck("cluster", agent.Check)}
		if !cfg.DefaultReadiness {
			popts = append(popts, opspage.WithReadiness(cfg.MinHealthy, cfg.Label))
		}
		mux.Handle("/zenws/", opspage.New(sys, map[string]*balancer.Balancer{"pool": b}, popts...))
		// /ctl/calls?n=N&timeout=D: N retry-safe balanced calls in a row,
		// each with its own timeout D.
		mux.HandleFunc("/ctl/calls", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			d, _ := time.ParseDuration(r.URL.Query().Get("timeout"))
			var rep callsReport
			for i := 0; i < n; i++ {
				cctx, ccancel := context.WithTimeout(r.Context(), d)
				_, err := b.Call(cctx, "public/get_time", nil, balancer.RetrySafe())
				ccancel()
				if err != nil {
					rep.Failed++
					if len(rep.Errors) < 5 {
						rep.Errors = append(rep.Errors, err.Error())
					}
				} else {
					rep.OK++
				}
			}
			_ = json.NewEncoder(w).Encode(rep)
		})
		if cfg.Budget.Key != "" {
			svc, err := budget.Start(sys, m.Members, budget.WithOut(agent.Expelled()))
			if err != nil {
				return err
			}
			defer svc.Stop()
			lim, err := svc.Limiter(cfg.Budget)
			if err != nil {
				return err
			}
			mux.HandleFunc("/ctl/dial", func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				var at []int64
				for i := 0; i < n; i++ {
					if err := lim.Wait(r.Context(), ratelimit.Frame{Data: []byte("dial")}); err != nil {
						break
					}
					at = append(at, time.Now().UnixNano())
				}
				_ = json.NewEncoder(w).Encode(at)
			})
			mux.HandleFunc("/ctl/holder", func(w http.ResponseWriter, _ *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]any{"holder": svc.Holder(), "self": sys.Address(),
					"stats": svc.Stats(cfg.Budget.Key)})
			})
		}
		// /ctl/big?n=N&size=S: N balanced sends of S bytes each at once,
		// retry-safe, 10 s each.
		mux.HandleFunc("/ctl/big", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			size, _ := strconv.Atoi(r.URL.Query().Get("size"))
			deadline := 10 * time.Second
			if ms, err := strconv.Atoi(r.URL.Query().Get("timeout_ms")); err == nil && ms > 0 {
				deadline = time.Duration(ms) * time.Millisecond
			}
			msg := []byte(`{"jsonrpc":"2.0","method":"public/get_time","params":{"pad":"` + strings.Repeat("A", size) + `"}}`)
			var mu sync.Mutex
			var rep callsReport
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cctx, ccancel := context.WithTimeout(r.Context(), deadline)
					defer ccancel()
					err := b.Send(cctx, msg, balancer.RetrySafe())
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						rep.Failed++
						if len(rep.Errors) < 5 {
							rep.Errors = append(rep.Errors, err.Error())
						}
					} else {
						rep.OK++
					}
				}()
			}
			wg.Wait()
			_ = json.NewEncoder(w).Encode(rep)
		})
		// /ctl/orders?prefix=P&n=N&timeout=D: N orders in a row, not
		// retry-safe, ids P-0..P-(N-1); answers the ids that filled.
		mux.HandleFunc("/ctl/orders", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			d, _ := time.ParseDuration(r.URL.Query().Get("timeout"))
			prefix := r.URL.Query().Get("prefix")
			var rep struct {
				Filled []string
				Failed map[string]string
			}
			rep.Failed = map[string]string{}
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("%s-%d", prefix, i)
				cctx, ccancel := context.WithTimeout(r.Context(), d)
				_, err := b.Call(cctx, "private/buy", map[string]string{"id": id})
				ccancel()
				if err != nil {
					rep.Failed[id] = err.Error()
				} else {
					rep.Filled = append(rep.Filled, id)
				}
			}
			_ = json.NewEncoder(w).Encode(rep)
		})
		mux.HandleFunc("/ctl/stats", func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(agent.Stats())
		})
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", cfg.PagePort))
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
	}
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes it
	return nil
}

// proc is a node process of the test.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// startNode starts a node and waits for its READY.
func startNode(t *testing.T, cfg nodeConfig) *proc {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(raw))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if !strings.HasPrefix(sc.Text(), "READY") && !strings.HasPrefix(sc.Text(), "FAIL") {
				continue // the automanaged provider's echo prints its banner
			}
			select {
			case ready <- sc.Text():
			default:
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case line := <-ready:
		if line != "READY" {
			t.Fatalf("node: %s", line)
		}
	case <-p.done:
		t.Fatal("node exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("node not ready within 30 s")
	}
	return p
}

// freePorts returns n ports free on 127.0.0.1 now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return ports
}

// getJSON fetches url (JSON) into v and returns the status (-1 on an
// error, reported with t.Errorf: it is called from goroutines too, where
// t.Fatal may not be).
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return -1
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Errorf("GET %s: %v in %q", url, err, body)
		return -1
	}
	return resp.StatusCode
}

// startEtcd starts Debian's etcd on free 127.0.0.1 ports with a fresh
// data directory and returns its client host:port; it skips without etcd
// (fails under CI=true).
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd is not installed; under CI=true this is a failure")
		}
		t.Skip("etcd is not installed (apt-get install -y etcd-server)")
	}
	ps := freePorts(t, 2)
	client := fmt.Sprintf("127.0.0.1:%d", ps[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ps[1])
	cmd := exec.Command(bin, "--name", "review16", "--data-dir", t.TempDir(),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "review16="+peer, "--log-level", "error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	hc := http.Client{Timeout: time.Second}
	ok := waitFor(20*time.Second, func() bool {
		resp, err := hc.Get("http://" + client + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct{ Health string }
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Health == "true"
	})
	if !ok {
		t.Fatal("etcd not healthy within 20 s")
	}
	return client
}
