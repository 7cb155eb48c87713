package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zenws/zenws/actors"
	vderibit "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

type config struct {
	duration time.Duration
	clients  int
	url      string
	logLevel string
	logFile  string
	record   string
	metrics  string
	refresh  time.Duration
	strategy string
	terminal bool
	nodes    int    // -nodes: the pool across this many processes (0: one process)
	http     string // -http: the operator's page (with -nodes)
}

// channels every client subscribes to.
var channels = []string{"ticker.BTC-PERPETUAL.100ms", bookChannel}

// Timings of the simulated run.
const (
	callTimeout    = 3 * time.Second
	callersPer     = 2 // balanced callers per client
	callEvery      = 20 * time.Millisecond
	heartbeatEvery = 400 * time.Millisecond // ping/pong: a half-open connection is found within ~1.2 s
	tickerEvery    = 100 * time.Millisecond
	bookEvery      = 20 * time.Millisecond // the simulated book's changes
	refuseFor      = 1500 * time.Millisecond
)

// faultKinds cycle in this order.
var faultKinds = []string{"abrupt drop", "close 1001", "half-open (stalled)", "refused reconnects"}

// demo is one run's state.
type demo struct {
	cfg     config
	log     *zap.Logger
	sys     *actor.ActorSystem
	sup     *supervision.Supervisor
	bal     *balancer.Balancer
	servers []*wstest.Server // nil with -url
	books   []*wstest.Book   // the venues' order books (bookChannel, feedChannel); nil with -url
	clients []*actors.Client
	// The order book two ways: each client's own subscription (its gap
	// notices counted), and a redundant feed holding it on two clients.
	pool       *feed.Pool
	feedCopies int
	feedBook   *bookCheck
	singleGaps atomic.Int64
	names      map[string]string // PID id -> c1, c2, ...

	calls, failed, hung atomic.Int64
	notif               []atomic.Int64 // per client
	faults              []string       // injected, in order
	faultsMu            sync.Mutex
	stalled             []*wstest.Conn
	lastFault           atomic.Value // string
	worstP99            atomic.Int64
}

// run runs the demo until cfg.duration or ctx ends.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (summary, error) {
	d := &demo{cfg: cfg, names: map[string]string{}}
	d.lastFault.Store("none yet")
	log, closeLog, logPath, err := newLogger(cfg, stderr)
	if err != nil {
		return summary{}, err
	}
	defer closeLog()
	d.log = log
	var mp metric.MeterProvider
	if cfg.metrics != "" {
		provider, shutdown, err := serveMetrics(cfg.metrics, log)
		if err != nil {
			return summary{}, err
		}
		defer shutdown()
		mp = provider
		fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", cfg.metrics)
	}
	defer d.stopServers() // last: after the clients have closed
	d.sys = actor.NewActorSystem(actors.ActorSystemLogger(log))
	defer d.sys.Shutdown()
	d.sup, err = supervision.Start(d.sys, supervision.WithLogger(log))
	if err != nil {
		return summary{}, err
	}
	defer func() { _ = d.sup.Stop() }()
	d.feedBook = newBookCheck(feedChannel)
	// Three copies where there are clients for them: a half-open connection
	// is found only after three heartbeat intervals, and the next fault may
	// cut another copy meanwhile; a third keeps the feed whole through two
	// losses at once.
	d.feedCopies = max(1, min(3, cfg.clients))
	if d.pool, err = feed.New(d.sys, feed.WithDiscovery(d.sup.ListClients), feed.WithCopies(d.feedCopies),
		feed.WithVenue(vderibit.Venue{}), feed.WithHandler(d.feedBook.handle), feed.WithLogger(log)); err != nil {
		return summary{}, err
	}
	defer func() { _ = d.pool.Stop() }()
	if err := d.startClients(ctx, mp); err != nil {
		return summary{}, err
	}
	fctx, fcancel := context.WithTimeout(ctx, 15*time.Second)
	err = d.pool.Refresh(fctx)
	if err == nil {
		err = d.pool.Subscribe(fctx, feedChannel)
	}
	fcancel()
	if err != nil {
		return summary{}, fmt.Errorf("the redundant feed: %w", err)
	}
	balOpts := []balancer.Option{balancer.WithLogger(log)}
	if cfg.strategy == "health-score" {
		balOpts = append(balOpts, balancer.WithStrategy(balancer.HealthScore))
	}
	if mp != nil {
		balOpts = append(balOpts, balancer.WithMeterProvider(mp))
	}
	if d.bal, err = d.sup.Balancer(balOpts...); err != nil {
		return summary{}, err
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < callersPer*len(d.clients); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); d.caller(runCtx) }()
	}
	if d.servers != nil {
		wg.Add(1)
		go func() { defer wg.Done(); d.injectFaults(runCtx, start) }()
	}
	d.showLoop(runCtx, stdout, start)
	wg.Wait()
	interrupted := ctx.Err() != nil
	sum := d.summarize(time.Since(start), interrupted)
	if logPath != "" {
		sum.logPath = logPath
	}
	return sum, nil
}

// newLogger logs to -log-file, or to stderr; while the table is live on a
// terminal, to a file in the temp dir so that logs never tear the table.
func newLogger(cfg config, stderr io.Writer) (*zap.Logger, func(), string, error) {
	level, _ := parseLevel(cfg.logLevel)
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	path := cfg.logFile
	var f *os.File
	var err error
	switch {
	case path != "":
		f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	case cfg.terminal: // a new file of our own: never one someone placed there
		f, err = os.CreateTemp("", "zenws-demo-*.log")
		if err == nil {
			path = f.Name()
		}
	default:
		return zap.New(zapcore.NewCore(enc, zapcore.AddSync(stderr), level)), func() {}, "", nil
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("log file: %w", err)
	}
	l := zap.New(zapcore.NewCore(enc, zapcore.AddSync(f), level))
	return l, func() { _ = l.Sync(); _ = f.Close() }, path, nil
}

func parseLevel(s string) (zapcore.Level, error) {
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("-log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// serveMetrics serves an OpenTelemetry meter provider's instruments for
// Prometheus at addr.
func serveMetrics(addr string, log *zap.Logger) (metric.MeterProvider, func(), error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", zap.Error(err))
		}
	}()
	return mp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	}, nil
}

// startClients starts one simulated venue and one supervised client per
// -clients (or every client on -url), each subscribed to the channels.
func (d *demo) startClients(ctx context.Context, mp metric.MeterProvider) error {
	d.notif = make([]atomic.Int64, d.cfg.clients)
	if d.cfg.url == "" { // each book served by every venue
		d.books = []*wstest.Book{wstest.NewBook(bookChannel, bookEvery), wstest.NewBook(feedChannel, bookEvery)}
	}
	var toPool func(actors.Inbound) // the redundant feed's (none on a node of -nodes)
	if d.pool != nil {
		toPool = d.pool.Handler()
	}
	for i := 0; i < d.cfg.clients; i++ {
		url := d.cfg.url
		hb := actors.WithHeartbeat(actors.HeartbeatPingPong, heartbeatEvery)
		if url == "" {
			srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithDeribitTicker(tickerEvery), wstest.WithBook(d.books...))
			d.servers = append(d.servers, srv)
			url = srv.URL()
		} else {
			hb = actors.WithHeartbeat(actors.HeartbeatDeribit, 10*time.Second)
		}
		n := &d.notif[i]
		opts := []actors.Option{
			hb, func(c *actors.Config) { c.HeartbeatMisses = 2 },
			actors.WithRetryDelay(200 * time.Millisecond), actors.WithMaxBackoff(2 * time.Second),
			actors.WithRetryCount(20), actors.WithRequestTimeout(2 * time.Second),
			actors.WithLogger(d.log),
			actors.WithVenue(vderibit.Venue{}), // book.* sequence guards: a gap notice where a single subscription has a hole
			actors.WithHandler(func(in actors.Inbound) {
				switch {
				case in.Kind == actors.KindNotification:
					n.Add(1)
				case in.Kind == actors.KindGap && in.Channel == bookChannel:
					d.singleGaps.Add(1)
				}
				if toPool != nil {
					toPool(in) // the redundant feed takes its copies' updates
				}
			}),
		}
		if mp != nil {
			opts = append(opts, func(c *actors.Config) { c.MeterProvider = mp })
		}
		if d.cfg.record != "" {
			opts = append(opts, actors.WithRecordFile(fmt.Sprintf("%s.%d.jsonl", d.cfg.record, i+1)))
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c, err := d.sup.StartClient(sctx, url, opts...)
		if err == nil {
			err = c.Subscribe(sctx, channels...)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("client %d: %w", i+1, err)
		}
		d.clients = append(d.clients, c)
		d.names[c.PID().Id] = fmt.Sprintf("c%d", i+1)
	}
	return nil
}

func (d *demo) stopServers() {
	for _, b := range d.books {
		b.Close()
	}
	for _, s := range d.servers {
		s.Close()
	}
}

// caller makes balanced calls until ctx ends. public/get_time is
// retry-safe: a lost connection sends it through another client.
func (d *demo) caller(ctx context.Context) {
	t := time.NewTicker(callEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		start := time.Now()
		_, err := d.bal.Call(cctx, "public/get_time", nil)
		cancel()
		d.calls.Add(1)
		if err != nil {
			d.failed.Add(1)
			d.log.Info("balanced call failed", zap.Error(err))
		}
		if time.Since(start) > callTimeout+time.Second {
			d.hung.Add(1) // no answer within its deadline
		}
	}
}

// injectFaults injects one fault every interval on the next client, and
// stops early enough to leave a quiet stretch for the last one to heal.
func (d *demo) injectFaults(ctx context.Context, start time.Time) {
	// The last fault needs time to heal: half-open detection takes about
	// three heartbeat intervals, then the restore.
	quiet := min(max(2500*time.Millisecond, d.cfg.duration/4), 5*time.Second)
	every := max(700*time.Millisecond, min(3*time.Second, (d.cfg.duration-quiet)/5))
	t := time.NewTicker(every)
	defer t.Stop()
	k := 0
	for {
		select {
		case <-ctx.Done():
			d.cleanupFaults()
			return
		case <-t.C:
		}
		if time.Since(start) > d.cfg.duration-quiet {
			d.cleanupFaults()
			continue
		}
		// Every kind on every client in turn: shift the client once per
		// cycle of kinds, so that 4 clients do not always get the same one.
		i := (k + k/len(faultKinds)) % len(d.servers)
		kind := faultKinds[k%len(faultKinds)]
		k++
		d.inject(ctx, i, kind)
	}
}

func (d *demo) inject(ctx context.Context, i int, kind string) {
	srv := d.servers[i]
	conns := srv.Conns()
	if len(conns) == 0 {
		return
	}
	switch kind {
	case "abrupt drop":
		srv.DropAll()
	case "close 1001":
		for _, c := range conns {
			_ = c.Disconnect(websocket.StatusGoingAway, "going away (demo fault)")
		}
	case "half-open (stalled)":
		for _, c := range conns {
			c.Stall()
			d.faultsMu.Lock()
			d.stalled = append(d.stalled, c)
			d.faultsMu.Unlock()
		}
	case "refused reconnects":
		srv.RefuseHandshakes(503)
		srv.DropAll()
		go func() {
			select {
			case <-time.After(refuseFor):
			case <-ctx.Done():
			}
			srv.RefuseHandshakes(0)
		}()
	}
	text := fmt.Sprintf("%s on c%d", kind, i+1)
	d.faultsMu.Lock()
	d.faults = append(d.faults, text)
	d.faultsMu.Unlock()
	d.lastFault.Store(text)
	d.log.Warn("fault injected", zap.String("fault", text))
}

// cleanupFaults closes the server side of stalled connections once their
// clients have moved on, and lets every refused server accept again.
func (d *demo) cleanupFaults() {
	d.faultsMu.Lock()
	stalled := d.stalled
	d.stalled = nil
	d.faultsMu.Unlock()
	for _, c := range stalled {
		c.Drop()
	}
	for _, s := range d.servers {
		s.RefuseHandshakes(0)
	}
}

// showLoop draws the table every refresh until ctx ends, then once more.
func (d *demo) showLoop(ctx context.Context, out io.Writer, start time.Time) {
	t := time.NewTicker(d.cfg.refresh)
	defer t.Stop()
	tb := &table{out: out, live: d.cfg.terminal}
	every := 0
	for {
		select {
		case <-ctx.Done():
			tb.draw(d.snapshot(time.Since(start)))
			return
		case <-t.C:
		}
		every++
		// Not a terminal: a plain status every 2 s instead of a redraw.
		if d.cfg.terminal || every%max(1, int(2*time.Second/d.cfg.refresh)) == 0 {
			tb.draw(d.snapshot(time.Since(start)))
		}
	}
}

// row is one client in the table.
type row struct {
	name          string
	health        actors.Health
	figure        string // what the balancer's strategy compares for it
	eligible      bool
	notPicked     string // why the balancer would not pick it now ("" if it may)
	notifications int64
}

type snapshot struct {
	elapsed          time.Duration
	figure           string // the strategy's figure: "load" or "score"
	rows             []row
	calls, failed    int64
	failovers        uint64
	faults           int
	lastFault        string
	totalReconnects  uint64
	totalRestarts    uint64
	totalNotes       int64
	worstP99         time.Duration
	eligible, pooled int
	singleGaps       int64       // gap notices of the book over the clients' own subscriptions
	feedCopies       int         // the redundant feed's copies
	feed             bookFigures // what the redundant feed's consumer saw
}

func (d *demo) snapshot(elapsed time.Duration) snapshot {
	s := snapshot{elapsed: elapsed, calls: d.calls.Load(), failed: d.failed.Load(), failovers: d.bal.Stats().Failovers, lastFault: d.lastFault.Load().(string),
		singleGaps: d.singleGaps.Load(), feedCopies: d.feedCopies}
	if d.feedBook != nil {
		s.feed = d.feedBook.figures()
	}
	d.faultsMu.Lock()
	s.faults = len(d.faults)
	d.faultsMu.Unlock()
	strategy := d.bal.Stats().Strategy
	s.figure = figureName(strategy)
	pooled := map[string]balancer.ClientHealth{}
	for _, ch := range d.bal.PoolHealth() {
		pooled[ch.PID.Id] = ch
		s.pooled++
		if ch.Eligible {
			s.eligible++
		}
	}
	for i, c := range d.clients {
		h := c.Health()
		ch, ok := pooled[c.PID().Id]
		r := row{name: d.names[c.PID().Id], health: h, eligible: ch.Eligible, notifications: d.notif[i].Load()}
		r.figure, r.notPicked = figure(strategy, ch), ch.NotPicked
		if !ok {
			r.figure, r.notPicked = "-", "not in the balancer's table"
		}
		s.rows = append(s.rows, r)
		s.totalReconnects += h.Reconnects
		s.totalRestarts += h.Restarts
		s.totalNotes += d.notif[i].Load()
		s.worstP99 = max(s.worstP99, h.RTTP99)
	}
	if w := time.Duration(d.worstP99.Load()); w > s.worstP99 {
		s.worstP99 = w
	}
	d.worstP99.Store(int64(s.worstP99))
	return s
}

// figureName names the ClientHealth figure the strategy compares.
func figureName(strategy string) string {
	if strategy == balancer.HealthScore.String() {
		return "score"
	}
	return "load"
}

// figure is that figure for one client: HealthScore's score (higher wins),
// or PeakEWMA's load (lower wins), shown as the expected wait it stands
// for: round-trip cost times the work in flight, raised by recent errors.
func figure(strategy string, ch balancer.ClientHealth) string {
	if strategy == balancer.HealthScore.String() {
		return fmt.Sprintf("%.0f", ch.Score)
	}
	if ch.Load >= 1e12 {
		return "unmeasured" // work in flight, no round trip measured yet
	}
	return dur(time.Duration(ch.Load))
}

// summarize checks the invariants at the end of the run.
func (d *demo) summarize(elapsed time.Duration, interrupted bool) summary {
	snap := d.snapshot(elapsed)
	sum := summary{snap: snap, interrupted: interrupted, hung: d.hung.Load()}
	// Calls are retry-safe and fail over: with a healthy client left, a
	// failure is rare. Allow 1% (every client of a small pool may be down
	// at once during a fault).
	if snap.calls > 0 && float64(snap.failed) > 0.01*float64(snap.calls) {
		sum.problems = append(sum.problems, fmt.Sprintf("%d of %d balanced calls failed (more than 1%%)", snap.failed, snap.calls))
	}
	if snap.calls == 0 && !interrupted {
		sum.problems = append(sum.problems, "no balanced call was made")
	}
	// The redundant feed: one connection lost at a time costs it nothing.
	if f := snap.feed; (f.gaps > 0 && d.feedCopies > 1) || f.duplicates > 0 || len(f.broken) > 0 {
		sum.problems = append(sum.problems, fmt.Sprintf("the redundant feed's book: %d gap notices, %d duplicates, %d changes that did not follow %v",
			f.gaps, f.duplicates, len(f.broken), f.broken))
	}
	if d.books != nil && snap.feed.changes == 0 && !interrupted {
		sum.problems = append(sum.problems, "the redundant feed delivered no change of the book")
	}
	d.faultsMu.Lock()
	sum.faultList = slices.Clone(d.faults)
	d.faultsMu.Unlock()
	if interrupted {
		return sum // stopped early: the final checks need the quiet stretch
	}
	// After the quiet stretch every client must be connected, its server
	// (simulator) must have its subscriptions, and notifications must flow.
	before := make([]int64, len(d.clients))
	for i := range d.clients {
		before[i] = d.notif[i].Load()
	}
	deadline := time.Now().Add(3 * time.Second)
	var restore []string
	for {
		restore = d.checkRestored(before)
		if len(restore) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	sum.problems = append(sum.problems, restore...)
	return sum
}

func (d *demo) checkRestored(before []int64) []string {
	var problems []string
	for i, c := range d.clients {
		name := fmt.Sprintf("c%d", i+1)
		if c.State() != actors.StateConnected {
			problems = append(problems, fmt.Sprintf("%s is %v, not connected", name, c.State()))
			continue
		}
		if got := ownChannels(c.Subscriptions()); !slices.Equal(got, sorted(channels)) {
			problems = append(problems, fmt.Sprintf("%s has subscriptions %v", name, got))
		}
		if d.servers != nil {
			conns := d.servers[i].Conns()
			live := 0
			for _, sc := range conns {
				if sc.Stalled() {
					continue
				}
				live++
				if got := ownChannels(sc.Channels()); !slices.Equal(got, sorted(channels)) {
					problems = append(problems, fmt.Sprintf("the venue of %s has %v subscribed", name, got))
				}
			}
			if live != 1 {
				problems = append(problems, fmt.Sprintf("the venue of %s has %d live connections", name, live))
			}
		}
		if d.notif[i].Load() == before[i] {
			problems = append(problems, fmt.Sprintf("no notifications reach %s", name))
		}
	}
	return problems
}

// ownChannels is a client's subscriptions without the redundant feed's
// channel (the feed places it on two clients of its choice).
func ownChannels(s []string) []string {
	return slices.DeleteFunc(slices.Clone(s), func(ch string) bool { return ch == feedChannel })
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// summary is the end of a run.
type summary struct {
	snap        snapshot
	faultList   []string
	problems    []string
	hung        int64
	interrupted bool
	logPath     string
}

func (s summary) ok() bool { return s.hung == 0 && len(s.problems) == 0 }

func (s summary) stoppedEarly() bool { return s.interrupted }

func (s summary) print(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nzenws demo: %v, %d clients\n", s.snap.elapsed.Round(100*time.Millisecond), len(s.snap.rows))
	fmt.Fprintf(&b, "  balanced calls   %d made, %d failed, %d failovers, %d without an answer in time\n", s.snap.calls, s.snap.failed, s.snap.failovers, s.hung)
	fmt.Fprintf(&b, "  faults injected  %d", len(s.faultList))
	if len(s.faultList) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(s.faultList, ", "))
	}
	fmt.Fprintf(&b, "\n  reconnects       %d, restarts %d\n", s.snap.totalReconnects, s.snap.totalRestarts)
	fmt.Fprintf(&b, "  notifications    %d received\n", s.snap.totalNotes)
	fmt.Fprintf(&b, "  order book       single subscriptions: %d gap notices (each a hole a fault cut, announced); redundant feed on %d clients: %d gaps, %d duplicates, %d changes applied in order\n",
		s.snap.singleGaps, s.snap.feedCopies, s.snap.feed.gaps, s.snap.feed.duplicates, s.snap.feed.changes)
	fmt.Fprintf(&b, "  worst p99        %v\n", s.snap.worstP99.Round(10*time.Microsecond))
	var logs []string
	if s.logPath != "" {
		logs = []string{s.logPath}
	}
	writeResult(w, &b, result{ok: s.ok(), interrupted: s.interrupted, problems: s.problems, logs: logs,
		good: "after the faults every client is connected, subscribed again and receiving"})
}

// result is the end of a summary.
type result struct {
	ok, interrupted bool
	problems        []string
	good            string // what no problem means
	logs            []string
}

// writeResult ends a summary: the problems (or that there are none), PASS
// or FAIL, and where the logs are.
func writeResult(w io.Writer, b *strings.Builder, r result) {
	switch {
	case r.interrupted:
		fmt.Fprintf(b, "  stopped early (interrupt): restore checks skipped\n")
	case len(r.problems) == 0:
		fmt.Fprintf(b, "  %s\n", r.good)
	default:
		for _, p := range r.problems {
			fmt.Fprintf(b, "  PROBLEM: %s\n", p)
		}
	}
	switch {
	case !r.ok:
		fmt.Fprintf(b, "  result           FAIL\n")
	case r.interrupted:
		fmt.Fprintf(b, "  result           INCOMPLETE (stopped early: not a pass)\n")
	default:
		fmt.Fprintf(b, "  result           PASS\n")
	}
	if len(r.logs) > 0 {
		fmt.Fprintf(b, "  logs             %s\n", strings.Join(r.logs, " "))
	}
	_, _ = io.WriteString(w, b.String())
}
