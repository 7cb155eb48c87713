package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Run starts the server in its own process and runs every workload of cfg
// for every contender in cs, in cfg.Rounds interleaved rounds: each round
// runs each workload for all contenders, starting one contender later
// than the round before, so that all see the same machine. logf reports
// progress. A failed run is recorded in Results.Failures and the rest go
// on; the error is for what stops everything (no server, too few files).
func Run(cfg Config, cs []Contender, logf func(format string, args ...any)) (*Results, error) {
	if err := raiseFileLimit(); err != nil {
		return nil, err
	}
	for _, n := range cfg.Idle {
		if uint64(n)+200 > fileLimit() {
			return nil, fmt.Errorf("bench: %d connections need more open files than the limit %d", n, fileLimit())
		}
	}
	url, stop, err := serverProcess()
	if err != nil {
		return nil, err
	}
	defer stop()
	ws := workloads(cfg)
	res := newResults(ws, cs)
	for r := 0; r < cfg.Rounds; r++ {
		for _, w := range ws {
			for i := range cs {
				c := cs[(i+r)%len(cs)]
				start := time.Now()
				vals, err := runOne(w, c, url)
				if err != nil {
					res.Failures = append(res.Failures, Failure{Round: r + 1, Workload: w.name, Contender: c, Err: err})
					logf("round %d/%d %-18s %-22s FAILED: %v", r+1, cfg.Rounds, w.name, c.Name, err)
					continue
				}
				res.add(c.Name, vals)
				logf("round %d/%d %-18s %-22s %v (%v)", r+1, cfg.Rounds, w.name, c.Name, brief(w, vals), time.Since(start).Round(time.Millisecond))
			}
		}
	}
	return res, nil
}

// runOne runs one workload for one contender with its own library, closes
// everything, and checks that no goroutine was left running.
func runOne(w workload, c Contender, url string) (map[string]float64, error) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lib, err := c.Open()
	if err != nil {
		return nil, err
	}
	vals, err := w.run(ctx, lib, url, c)
	lib.Close()
	if left := waitGoroutines(before, 10*time.Second); left > 0 {
		err = errors.Join(err, fmt.Errorf("%d goroutines still running 10 s after the workload", left))
	}
	return vals, err
}

// brief formats a run's values for the progress log.
func brief(w workload, vals map[string]float64) string {
	s := ""
	for _, rw := range w.rows {
		if v, ok := vals[rw.key]; ok {
			s += rw.key + "=" + format(rw.unit, v) + " "
		}
	}
	return s
}
