package bench

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	compare = flag.Bool("compare", false, "run TestCompare: every workload for every contender (-short for the quick variant)")
	only    = flag.String("only", "", "comma-separated workloads for TestCompare (e.g. reconnect); default all")
)

func TestMain(m *testing.M) {
	ServeIfChild()
	os.Exit(m.Run())
}

// TestCompare runs the side-by-side comparison and prints one table. It
// needs -compare:
//
//	go test -run TestCompare -v -timeout 30m -compare         # full, ~8 min on 2 cores
//	go test -run TestCompare -v -timeout 30m -compare -short  # ~1 min
//	go test -run TestCompare -v -compare -only reconnect      # one workload
func TestCompare(t *testing.T) {
	if !*compare {
		t.Skip("needs -compare")
	}
	cfg := FullConfig
	if testing.Short() {
		cfg = ShortConfig
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	start := time.Now()
	res, err := Run(cfg, Contenders, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s, %s, GOMAXPROCS %d, %d CPUs, %d rounds, RetryDelay %v, recws RecIntvlMin %v and HandshakeTimeout %v, took %v\n\n",
		time.Now().Format("2006-01-02"), runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), cfg.Rounds,
		RetryDelay, RetryDelay, recwsHandshakeTimeout, time.Since(start).Round(time.Second))
	res.Print(&b)
	fmt.Print(b.String())
	checkFailures(t, res)
}

// checkFailures fails the test for a failed run of the baseline or of a
// zenws contender; a third-party contender's failure is a finding, listed
// under the table, not a failure of the harness.
func checkFailures(t *testing.T, res *Results) {
	for _, f := range res.Failures {
		if f.Ours() {
			t.Error(f)
		} else {
			t.Log("third-party failure:", f)
		}
	}
}

// TestHarnessSmoke runs each contender once on a tiny version of every
// workload, so that the harness itself is tested.
func TestHarnessSmoke(t *testing.T) {
	res, err := Run(SmokeConfig, Contenders, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	checkFailures(t, res)
	failed := map[string]bool{}
	for _, f := range res.Failures {
		failed[f.Contender.Name] = true
	}
	for _, rw := range res.rows {
		for _, c := range Contenders {
			if c.Pooled && strings.Contains(rw.label, "idle connection") {
				continue // a pool is not one idle connection
			}
			if _, ok := res.value(rw, c.Name); !ok && !failed[c.Name] {
				t.Errorf("%s: no value for %s", rw.label, c.Name)
			}
		}
	}
	if testing.Verbose() {
		res.Print(os.Stdout)
	}
}
