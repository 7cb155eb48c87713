// Command demo runs the whole system on an embedded exchange simulator: a
// supervisor with several clients subscribed to market data, a balancer
// making calls through them, and a fault injected every few seconds
// (abrupt drop, close 1001, a half-open connection, refused reconnects),
// with a live table of every client. It needs no network:
//
//	go run ./cmd/demo
//
// It exits 0 when the run met its invariants (every call got an answer
// within its deadline; after the faults, every client is connected with
// its subscriptions back and notifications flowing), 1 otherwise, 2 on bad
// flags.
//
// Flags:
//
//	-duration 20s        how long to run (Ctrl-C stops cleanly at any time)
//	-clients 4           clients (and simulated venues, one per client)
//	-url wss://...       a real endpoint instead of the simulator (no faults injected)
//	-log-level warn      debug, info, warn, error
//	-log-file path       where logs go (default: stderr, or zenws-demo.log while the table is live)
//	-record path         record every client's session as JSONL (path.N.jsonl)
//	-metrics addr        serve OpenTelemetry metrics for Prometheus at http://addr/metrics
//	-refresh 500ms       table refresh interval
//	-strategy peak-ewma  the balancer's strategy: peak-ewma (default) or health-score
//	-nodes 3             the pool across 3 processes of the demo (see below)
//	-http addr           with -nodes: the operator's page at http://addr/zenws/
//
// The table shows, per client, the figure the balancer's strategy compares
// (load for peak-ewma, lower wins; score for health-score, higher wins),
// the client's last error (redacted by the client) and why the balancer
// would not pick it now (not connected, heartbeat failing, degraded...).
//
// With -nodes 3 the demo starts three processes of itself on 127.0.0.1
// (the same binary, told by an environment variable that it is a node),
// joined by Proto.Actor's automanaged membership (no server), each with its
// own simulated venues and clients (-clients per node, default 2) and a
// balancer over every node's clients (package balancer/cluster). The
// table shows, per node, its calls through its own clients, through other
// nodes' clients, and the calls it served for other nodes, and the other
// nodes' clients it sees. At 30% of the run the last node is killed
// (SIGKILL); once its clients have left every table it is started again.
// The summary checks that calls failed over, that none hung, that the
// killed node's clients left and came back, and that every client is
// connected and subscribed at the end. The nodes read their stdin: they
// leave when it closes, so they never outlive the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if spec := os.Getenv(nodeEnv); spec != "" { // a node of -nodes, started by the demo
		os.Exit(nodeMain(spec))
	}
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain parses flags, runs the demo and returns the exit code.
func runMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.nodes > 0 {
		sum, err := runNodes(ctx, cfg, stdout, stderr)
		return exitCode(ctx, sum, err, stdout, stderr)
	}
	sum, err := run(ctx, cfg, stdout, stderr)
	return exitCode(ctx, sum, err, stdout, stderr)
}

// exitInterrupted is the exit code of a run stopped early (by SIGINT or
// SIGTERM) without a problem found: not a pass, since the checks of the
// run's end did not run (the shell's 128+SIGINT).
const exitInterrupted = 130

// exitCode prints a run's summary (or its error) and returns the exit
// code: 0 for a PASS, 1 for a FAIL or an error, exitInterrupted for a run
// stopped early.
func exitCode(ctx context.Context, sum interface {
	print(io.Writer)
	ok() bool
	stoppedEarly() bool
}, err error, stdout, stderr io.Writer) int {
	if err != nil {
		if ctx.Err() != nil { // interrupted while starting
			fmt.Fprintln(stderr, "demo: interrupted")
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	sum.print(stdout)
	switch {
	case !sum.ok():
		return 1
	case sum.stoppedEarly():
		return exitInterrupted
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long to run")
	fs.IntVar(&cfg.clients, "clients", 4, "number of clients (one simulated venue each)")
	fs.StringVar(&cfg.url, "url", "", "a real endpoint instead of the simulator, e.g. wss://test.deribit.com/ws/api/v2 (no faults injected)")
	fs.StringVar(&cfg.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.StringVar(&cfg.logFile, "log-file", "", "log to this file (default: stderr, or zenws-demo.log in the temp dir while the table is live)")
	fs.StringVar(&cfg.record, "record", "", "record each client's session as JSONL to this path (.N.jsonl per client)")
	fs.StringVar(&cfg.metrics, "metrics", "", "serve metrics for Prometheus at http://ADDR/metrics, e.g. 127.0.0.1:9464")
	fs.DurationVar(&cfg.refresh, "refresh", 500*time.Millisecond, "table refresh interval")
	fs.StringVar(&cfg.strategy, "strategy", "peak-ewma", "the balancer's strategy: peak-ewma or health-score")
	fs.IntVar(&cfg.nodes, "nodes", 0, "run the pool across this many processes of the demo on 127.0.0.1 (2-5; -clients is then per node, default 2), one killed mid-run and started again")
	fs.StringVar(&cfg.http, "http", "", "with -nodes: serve the operator's page at http://ADDR/zenws/, e.g. 127.0.0.1:8080")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.nodes > 0 && !set["clients"] {
		cfg.clients = 2
	}
	var bad string
	switch {
	case cfg.nodes != 0 && (cfg.nodes < 2 || cfg.nodes > 5):
		bad = "-nodes must be between 2 and 5"
	case cfg.nodes > 0 && (cfg.url != "" || cfg.record != "" || cfg.metrics != ""):
		bad = "-nodes runs on the simulator: no -url, -record or -metrics"
	case cfg.nodes > 0 && cfg.duration < 6*time.Second:
		bad = "-nodes needs -duration of at least 6s (a node is killed and started again)"
	case cfg.nodes > 0 && cfg.clients > 8:
		bad = "-clients must be between 1 and 8 with -nodes"
	case cfg.http != "" && cfg.nodes == 0:
		bad = "-http goes with -nodes (the single process has -metrics)"
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected arguments %q", fs.Args())
	case cfg.duration < time.Second:
		bad = "-duration must be at least 1s"
	case cfg.clients < 1 || cfg.clients > 64:
		bad = "-clients must be between 1 and 64"
	case cfg.refresh < 50*time.Millisecond:
		bad = "-refresh must be at least 50ms"
	case cfg.strategy != "peak-ewma" && cfg.strategy != "health-score":
		bad = fmt.Sprintf("-strategy %q: want peak-ewma or health-score", cfg.strategy)
	}
	if _, err := parseLevel(cfg.logLevel); err != nil {
		bad = err.Error()
	}
	if bad != "" {
		fmt.Fprintln(stderr, "demo:", bad)
		fs.Usage()
		return cfg, fmt.Errorf("%s", bad)
	}
	cfg.terminal = isTerminal(os.Stdout)
	return cfg, nil
}

// isTerminal reports whether f is a character device (a terminal): the
// table is then redrawn in place.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
