package chaos

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/supervision"
)

// TestMain fails the package if goroutines are left behind once the tests
// are done, apart from those leakOptions names.
func TestMain(m *testing.M) {
	// Toxiproxy's toxics log through zerolog's global logger; keep it quiet.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	goleak.VerifyTestMain(m, leakOptions()...)
}

// strandedToxiproxy are the functions of the Toxiproxy goroutines the leak
// check ignores wherever they appear on a stack: every stage of a proxied
// link's pipeline runs under ToxicStub.Run, its reader under ToxicLink.read.
// See leakOptions.
var strandedToxiproxy = []string{
	"github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run",
	"github.com/Shopify/toxiproxy/v2.(*ToxicLink).read",
}

// leakOptions are the goroutines the leak check ignores, none of them
// zenws's, each with the reason it outlives a test:
func leakOptions() []goleak.Option {
	return []goleak.Option{
		// A Toxiproxy bug (seen in v2.5.0 and v2.12.0), in the instrument,
		// not in the code under test: a link is a chain of goroutines joined
		// by channels. When a proxied connection is cut while bytes flow (a
		// reset_peer toxic firing, Proxy.Stop for a venue restart, a client
		// giving up on a link starved by the bandwidth toxic), one stage
		// stops reading (reset_peer returns; the link's writer fails on the
		// closed socket and returns without draining). The stage before it
		// then blocks for ever on a channel send (the no-op stage in
		// toxics/noop.go, the bandwidth toxic in toxics/bandwidth.go), and
		// the link's reader may block behind it (stream/io_chan.go). The link
		// is gone from its proxy by then, so nothing can interrupt them;
		// their sockets are closed (at the latest when the proxies stop).
		// Only these two roots are ignored, anything else of Toxiproxy's
		// still fails the check, and the run counts them apart ("Toxiproxy
		// goroutines stranded by a cut").
		goleak.IgnoreAnyFunction(strandedToxiproxy[0]),
		goleak.IgnoreAnyFunction(strandedToxiproxy[1]),
		// The same rules as internal/testutil.LeakOptions, which another
		// module cannot import:
		//
		// a dead letter (a message to an actor that just stopped: a health
		// push to a stopping balancer, a reader's last frame) starts
		// Proto.Actor's dead-letter throttle, a goroutine that sleeps for
		// the throttle interval (1 s) before it exits by itself. Its name
		// depends on inlining, hence both spellings.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	}
}

// runConfig sizes a run.
type runConfig struct {
	mode          string
	duration      time.Duration // of the workload
	tail          time.Duration // no new fault starts in the last tail
	clients       int
	faultWorkers  int           // faults injected at once, on different venues
	hold          time.Duration // latency, bandwidth and slicer toxics
	downtime      time.Duration // between a venue's death and its restart
	refuseFor     time.Duration // handshakes refused at least this long
	recoverWithin time.Duration // after a fault is healed

	ticker          time.Duration // each venue's notification interval per channel
	heartbeat       time.Duration // client ping interval
	heartbeatMisses int           // pings missed in a row before reconnecting
	requestTimeout  time.Duration
	writeTimeout    time.Duration

	callers, orderers, senders int           // goroutines per kind of operation
	callPace, orderPace        time.Duration // per goroutine
	opDeadline                 time.Duration
	panicEvery                 int64 // handler panics on every n-th notification
	kinds                      []faultKind
}

func configure(t *testing.T) runConfig {
	cfg := runConfig{
		mode:            "full",
		duration:        60 * time.Second,
		tail:            5 * time.Second,
		clients:         10,
		faultWorkers:    3,
		hold:            3 * time.Second,
		downtime:        1500 * time.Millisecond,
		refuseFor:       1500 * time.Millisecond,
		recoverWithin:   15 * time.Second,
		ticker:          100 * time.Millisecond,
		heartbeat:       time.Second,
		heartbeatMisses: 2,
		requestTimeout:  1500 * time.Millisecond,
		writeTimeout:    2 * time.Second,
		callers:         12,
		orderers:        4,
		senders:         2,
		callPace:        25 * time.Millisecond,
		orderPace:       50 * time.Millisecond,
		// Longer than the balancer's attempts (faultWorkers+1, each bounded
		// by requestTimeout) so that with at most faultWorkers venues
		// faulty a retry-safe call always reaches a healthy one in time.
		opDeadline: 7 * time.Second,
		panicEvery: 250,
		kinds:      faultKinds,
	}
	if testing.Short() {
		cfg.mode = "short"
		cfg.duration = 10 * time.Second
		cfg.tail = 3 * time.Second
		cfg.hold = 1500 * time.Millisecond
		cfg.downtime = 500 * time.Millisecond
		cfg.refuseFor = 700 * time.Millisecond
	}
	if s := os.Getenv("ZENWS_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 5*time.Second {
			t.Fatalf("ZENWS_CHAOS_DURATION=%q: want a duration of at least 5s", s)
		}
		cfg.duration = d
		cfg.mode += " (" + s + ")"
	}
	if s := os.Getenv("ZENWS_CHAOS_FAULTS"); s != "" {
		cfg.kinds = nil
		for _, name := range strings.Split(s, ",") {
			i := slices.IndexFunc(faultKinds, func(k faultKind) bool { return k.name == strings.TrimSpace(name) })
			if i < 0 {
				t.Fatalf("ZENWS_CHAOS_FAULTS=%q: unknown fault %q", s, name)
			}
			cfg.kinds = append(cfg.kinds, faultKinds[i])
		}
		cfg.mode += " (faults " + s + ")"
	}
	return cfg
}

// rig is the system under test: venues behind proxies, a supervisor with
// one client per venue, its balancer.
type rig struct {
	cfg     runConfig
	net     *network
	venues  []*venue
	sys     *actor.ActorSystem
	sup     *supervision.Supervisor
	bal     *balancer.Balancer
	clients []*actors.Client
	feeds   []*feed

	mu         sync.Mutex
	latencyRTT []time.Duration // heartbeat round trips at the end of latency faults
}

// logger is zap.NewNop unless ZENWS_CHAOS_LOG names a level.
func logger(t *testing.T) *zap.Logger {
	lvl := os.Getenv("ZENWS_CHAOS_LOG")
	if lvl == "" {
		return zap.NewNop()
	}
	cfg := zap.NewDevelopmentConfig()
	if err := cfg.Level.UnmarshalText([]byte(lvl)); err != nil {
		t.Fatalf("ZENWS_CHAOS_LOG=%q: %v", lvl, err)
	}
	l, err := cfg.Build()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// start builds the rig: every client connected, authenticated and
// subscribed, and every venue's live connection holding its channels.
func start(t *testing.T, cfg runConfig) *rig {
	log := logger(t)
	r := &rig{cfg: cfg, net: newNetwork()}
	for i := range cfg.clients {
		v, err := r.net.newVenue(i, cfg.ticker)
		if err != nil {
			r.shutdown()
			t.Fatal(err)
		}
		r.venues = append(r.venues, v)
	}
	r.sys = actor.NewActorSystem(actors.ActorSystemLogger(log))
	sup, err := supervision.Start(r.sys, supervision.WithRestartBudget(20, time.Minute), supervision.WithLogger(log))
	if err != nil {
		r.shutdown()
		t.Fatal(err)
	}
	r.sup = sup
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, v := range r.venues {
		f := newFeed(channelsFor(i), cfg.panicEvery)
		c, err := sup.StartClient(ctx, v.url(),
			actors.WithHeartbeat(actors.HeartbeatPingPong, cfg.heartbeat),
			func(c *actors.Config) { c.HeartbeatMisses = cfg.heartbeatMisses },
			actors.WithTimeout(2*time.Second),
			actors.WithRetryDelay(100*time.Millisecond),
			actors.WithMaxBackoff(time.Second),
			actors.WithRetryCount(100),
			actors.WithRequestTimeout(cfg.requestTimeout),
			func(c *actors.Config) { c.WriteTimeout = cfg.writeTimeout },
			actors.WithConnectHook(authHook),
			actors.WithHandler(f.handle),
			actors.WithStateObserver(f.observe),
			actors.WithLogger(log.With(zap.String("venue", v.name))))
		if err == nil {
			err = c.Subscribe(ctx, f.channels...)
		}
		if err != nil {
			r.shutdown()
			t.Fatalf("%s: %v", v.name, err)
		}
		r.clients = append(r.clients, c)
		r.feeds = append(r.feeds, f)
	}
	r.bal, err = sup.Balancer(balancer.WithMaxAttempts(cfg.faultWorkers+1), balancer.WithLogger(log))
	if err != nil {
		r.shutdown()
		t.Fatal(err)
	}
	if err := r.bal.Refresh(ctx); err != nil {
		r.shutdown()
		t.Fatal(err)
	}
	for i := range r.venues {
		if !eventually(10*time.Second, func() bool { ok, _ := r.checkSubscriptions(i); return ok }) {
			_, why := r.checkSubscriptions(i)
			r.shutdown()
			t.Fatalf("before the run: %s", why)
		}
	}
	return r
}

// shutdown stops the supervisor (its clients and balancer), the proxies,
// the venues and the actor system, in that order. It is safe on a
// half-built rig.
func (r *rig) shutdown() error {
	var errs []error
	if r.sup != nil {
		errs = append(errs, r.sup.Stop())
	}
	if r.net != nil {
		errs = append(errs, r.net.close())
	}
	for _, v := range r.venues {
		v.close()
	}
	if r.sys != nil {
		r.sys.Shutdown()
	}
	r.sup, r.net, r.venues, r.sys = nil, nil, nil, nil
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("shutdown: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// sampleSubscriptions compares, every `every` until ctx ends, each venue's
// live connection with its client's confirmed set, whenever the client is
// connected on one stable generation and the venue has exactly one
// connection (otherwise a reconnect is under way and the sample is
// skipped).
func (r *rig) sampleSubscriptions(ctx context.Context, every time.Duration) (samples, mismatches int, details []string) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return samples, mismatches, details
		case <-tick.C:
		}
		for i, c := range r.clients {
			h1 := c.Health()
			conns := r.venues[i].server().Conns()
			if h1.State != actors.StateConnected || len(conns) != 1 {
				continue
			}
			server := conns[0].Channels()
			client := slices.Sorted(slices.Values(c.Subscriptions()))
			h2 := c.Health()
			again := r.venues[i].server().Conns()
			if h2.State != actors.StateConnected || h2.Generation != h1.Generation || len(again) != 1 || again[0] != conns[0] {
				continue
			}
			samples++
			if !slices.Equal(server, client) {
				mismatches++
				if len(details) < 5 {
					details = append(details, fmt.Sprintf("venue%d gen %d: server %v, client %v", i+1, h1.Generation, server, client))
				}
			}
		}
	}
}

// TestChaos runs the workload under faults and checks the invariants; see
// the package documentation.
func TestChaos(t *testing.T) {
	cfg := configure(t)
	r := start(t, cfg)
	rep := &report{cfg: cfg}
	defer func() {
		if r.sys != nil { // a t.Fatal on the way
			_ = r.shutdown()
		}
	}()

	base := make([]actors.Health, len(r.clients))
	for i, c := range r.clients {
		base[i] = c.Health()
	}
	t0 := time.Now()
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	w := &workload{bal: r.bal, sup: r.sup, deadline: cfg.opDeadline, grace: cfg.writeTimeout + 500*time.Millisecond}
	w.start(runCtx, opGetTime, cfg.callers, cfg.callPace)
	w.start(runCtx, opOrder, cfg.orderers, cfg.orderPace)
	w.start(runCtx, opSend, cfg.senders, cfg.callPace)

	type sampled struct {
		samples, mismatches int
		details             []string
	}
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	defer stopSampling()
	sampledCh := make(chan sampled, 1)
	go func() {
		s, m, d := r.sampleSubscriptions(sampleCtx, 200*time.Millisecond)
		sampledCh <- sampled{s, m, d}
	}()

	faultCtx, stopFaults := context.WithTimeout(context.Background(), cfg.duration+time.Minute)
	defer stopFaults()
	rep.faults = r.injectFaults(faultCtx, cfg.faultWorkers, t0.Add(cfg.duration-cfg.tail))
	stopFaults()
	rep.lastHealed = time.Now()

	// Notifications resume on every channel of every client.
	snaps := make([][]int64, len(r.feeds))
	for i, f := range r.feeds {
		snaps[i] = f.snapshot()
	}
	rep.resumed = eventually(10*time.Second, func() bool {
		for i, f := range r.feeds {
			if !f.grewBy(snaps[i], 3) {
				return false
			}
		}
		return true
	})
	rep.resumedAfter = time.Since(rep.lastHealed)
	for i, f := range r.feeds {
		for j := range f.counts {
			if f.counts[j].Load()-snaps[i][j] >= 3 {
				rep.channelsResumed++
			}
			rep.channels++
		}
	}
	if rest := time.Until(t0.Add(cfg.duration)); rest > 0 {
		hold(context.Background(), rest)
	}

	// Stop the workload; no operation may still be running past its
	// deadline.
	stopRun()
	rep.hung = w.stop(cfg.opDeadline + w.grace + time.Second)
	rep.ran = time.Since(t0)
	stopSampling()
	s := <-sampledCh
	rep.samples, rep.sampleMismatches, rep.sampleDetails = s.samples, s.mismatches, s.details

	// The end state: every venue's live connection against its client.
	for i := range r.venues {
		ok := eventually(5*time.Second, func() bool { ok, _ := r.checkSubscriptions(i); return ok })
		if ok {
			rep.finalSubsOK++
		} else {
			_, why := r.checkSubscriptions(i)
			rep.finalSubsDetails = append(rep.finalSubsDetails, why)
		}
	}
	rep.collect(r, w, base)

	// Shut down, then count what is left running.
	if err := r.shutdown(); err != nil {
		t.Error(err)
	}
	rep.leaked, rep.leakDetail, rep.stuckStages = leftovers()

	rep.check(t)
	rep.print(t)
	if path := os.Getenv("ZENWS_CHAOS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(rep.markdown()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// leftovers counts the goroutines still running after shutdown, apart
// from those leakOptions ignores (goleak retries for a while first), and
// the Toxiproxy goroutines stranded by a cut (see leakOptions).
func leftovers() (leaked int, detail string, stuck int) {
	if err := goleak.Find(leakOptions()...); err != nil {
		leaked, detail = max(1, strings.Count(err.Error(), "Goroutine ")), err.Error()
	}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if slices.ContainsFunc(strandedToxiproxy, func(fn string) bool { return strings.Contains(g, "\n"+fn+"(") }) {
			stuck++
		}
	}
	return leaked, detail, stuck
}
