package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Timings of the run across nodes.
const (
	nodeReadyWait = 40 * time.Second // the nodes started and each sees every other's clients
	leaveBound    = 10 * time.Second // a killed node's clients leave every table within this
	finalWait     = 20 * time.Second // the nodes' final checks
	exitWait      = 20 * time.Second // a node leaving after stdin closed
)

// nodeProc is one node process as the parent runs it: started again after
// its kill, on the same ports.
type nodeProc struct {
	spec  nodeSpec
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the process has exited and its output is read

	mu     sync.Mutex
	last   nodeStatus  // the latest status of this run
	have   bool        // last is set
	final  *nodeStatus // the final status of this run
	past   nodeStatus  // the counters of earlier runs (a killed run's last status)
	killed bool
	runs   int
	logs   []string // each run's log file
}

func (p *nodeProc) start(exe string, stderr io.Writer) error {
	spec := p.spec
	if spec.LogFile != "" && p.runs > 0 { // a run of its own: the log of the killed one stays
		spec.LogFile += fmt.Sprintf(".run%d", p.runs+1)
	}
	if spec.LogFile != "" {
		p.logs = append(p.logs, spec.LogFile)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe) // main (or a test binary's TestMain) sees nodeEnv first
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(raw))
	cmd.Stderr = stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node %s: %w", p.spec.Name, err)
	}
	p.mu.Lock()
	p.cmd, p.have, p.final, p.killed = cmd, false, nil, false
	p.runs++
	p.mu.Unlock()
	done := make(chan struct{})
	p.done = done
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var s nodeStatus
			if json.Unmarshal(sc.Bytes(), &s) != nil {
				continue
			}
			p.mu.Lock()
			p.last, p.have = s, true
			if s.Final {
				p.final = &s
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	return nil
}

// kill SIGKILLs the node and waits for it; its last counters are kept.
func (p *nodeProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	p.past = addStatus(p.past, p.last)
	p.have, p.killed = false, true
}

// leave closes the node's stdin (it stops the clean way) and waits for it,
// SIGKILL after exitWait.
func (p *nodeProc) leave() {
	if p.cmd == nil {
		return
	}
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(exitWait):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

func (p *nodeProc) status() (nodeStatus, bool, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.have, p.killed
}

// total is the node's counters over all its runs.
func (p *nodeProc) total() nodeStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return addStatus(p.past, p.last)
}

func addStatus(a, b nodeStatus) nodeStatus {
	a.Calls += b.Calls
	a.Failed += b.Failed
	a.Hung += b.Hung
	a.Failovers += b.Failovers
	a.LocalPicks += b.LocalPicks
	a.RemotePicks += b.RemotePicks
	a.Served += b.Served
	return a
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// freePorts returns n ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// nodesRun is the parent's state of a run across nodes.
type nodesRun struct {
	cfg    config
	procs  []*nodeProc
	victim *nodeProc // the node killed and restarted

	start                  time.Time
	killAt, leftAt, backAt time.Duration // since start; 0 not yet
	restartAt              time.Duration
}

// runNodes runs the demo across cfg.nodes processes of this binary.
func runNodes(ctx context.Context, cfg config, stdout, stderr io.Writer) (nodesSummary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nodesSummary{}, err
	}
	ports, err := freePorts(2 * cfg.nodes)
	if err != nil {
		return nodesSummary{}, err
	}
	r := &nodesRun{cfg: cfg}
	stderr = &lockedWriter{w: stderr} // every node's stderr is copied to it at once
	var peers []string
	for i := 0; i < cfg.nodes; i++ {
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]))
	}
	for i := 0; i < cfg.nodes; i++ {
		spec := nodeSpec{Name: fmt.Sprintf("n%d", i+1), Nodes: cfg.nodes, Clients: cfg.clients, RemotePort: ports[2*i], AutoPort: ports[2*i+1],
			Peers: peers, LogLevel: cfg.logLevel, Strategy: cfg.strategy, Refresh: 100 * time.Millisecond}
		if i == 0 {
			spec.HTTP = cfg.http // the first node is never killed
		}
		switch {
		case cfg.logFile != "":
			spec.LogFile = cfg.logFile + "." + spec.Name
		case cfg.terminal: // logs never tear the table
			f, err := os.CreateTemp("", "zenws-demo-"+spec.Name+"-*.log")
			if err != nil {
				return nodesSummary{}, fmt.Errorf("log file: %w", err)
			}
			spec.LogFile = f.Name()
			_ = f.Close()
		}
		r.procs = append(r.procs, &nodeProc{spec: spec})
	}
	r.victim = r.procs[len(r.procs)-1]
	defer func() { // every node leaves with the run, whatever ended it
		var wg sync.WaitGroup
		for _, p := range r.procs {
			wg.Add(1)
			go func() { defer wg.Done(); p.leave() }()
		}
		wg.Wait()
	}()
	for _, p := range r.procs {
		if err := p.start(exe, stderr); err != nil {
			return nodesSummary{}, err
		}
	}
	if err := r.waitFormed(ctx); err != nil {
		return nodesSummary{}, err
	}
	if cfg.http != "" {
		fmt.Fprintf(stdout, "operator's page: http://%s/zenws/ (served by n1: every node's clients)\n", cfg.http)
	}
	r.start = time.Now()
	interrupted := r.loop(ctx, stdout, exe, stderr)
	sum := nodesSummary{elapsed: time.Since(r.start), nodes: cfg.nodes, clients: cfg.clients, interrupted: interrupted, victim: r.victim.spec.Name,
		killAt: r.killAt, leftAt: r.leftAt, restartAt: r.restartAt, backAt: r.backAt}
	if !interrupted {
		sum.finals = r.finish(ctx)
	}
	for _, p := range r.procs {
		sum.total = addStatus(sum.total, p.total())
		sum.logs = append(sum.logs, p.logs...)
	}
	sum.check()
	return sum, nil
}

// waitFormed waits until every node reports every other node's clients in
// its table.
func (r *nodesRun) waitFormed(ctx context.Context) error {
	deadline := time.Now().Add(nodeReadyWait)
	for {
		formed := true
		for _, p := range r.procs {
			s, ok, _ := p.status()
			if !ok || remoteCount(s) != (r.cfg.nodes-1)*r.cfg.clients {
				formed = false
			}
			select {
			case <-p.done:
				return fmt.Errorf("node %s exited while starting", p.spec.Name)
			default:
			}
		}
		if formed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes did not see each other's clients within %v", nodeReadyWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func remoteCount(s nodeStatus) int {
	k := 0
	for _, v := range s.RemoteBy {
		k += v
	}
	return k
}

// loop draws the table, kills the victim at 30% of the run and starts it
// again once its clients left every table, until the run's end; it
// reports whether ctx ended it.
func (r *nodesRun) loop(ctx context.Context, stdout io.Writer, exe string, stderr io.Writer) bool {
	const check = 100 * time.Millisecond // the kill's timings are measured at this grain (and the nodes' reports, 100 ms)
	t := time.NewTicker(check)
	defer t.Stop()
	tb := &table{out: stdout, live: r.cfg.terminal}
	draw := max(1, int(r.cfg.refresh/check))
	end := time.After(r.cfg.duration)
	victimAddr := fmt.Sprintf("127.0.0.1:%d", r.victim.spec.RemotePort)
	every := 0
	for {
		select {
		case <-ctx.Done():
			tb.put(r.lines(victimAddr))
			return true
		case <-end:
			tb.put(r.lines(victimAddr))
			return false
		case <-t.C:
		}
		el := time.Since(r.start)
		switch {
		case r.killAt == 0 && el >= r.cfg.duration*3/10:
			r.victim.kill()
			r.killAt = time.Since(r.start)
		case r.killAt != 0 && r.leftAt == 0 && r.survivorsSee(victimAddr, 0):
			r.leftAt = el
		case r.killAt != 0 && r.restartAt == 0 && (r.leftAt != 0 || el-r.killAt > leaveBound):
			if err := r.victim.start(exe, stderr); err != nil {
				fmt.Fprintln(stderr, "demo:", err)
			}
			r.restartAt = time.Since(r.start)
		case r.restartAt != 0 && r.backAt == 0 && r.survivorsSee(victimAddr, r.cfg.clients):
			if s, ok, _ := r.victim.status(); ok && remoteCount(s) == (r.cfg.nodes-1)*r.cfg.clients {
				r.backAt = el
			}
		}
		every++
		// Not a terminal: a plain table every 2 s instead of a redraw.
		if r.cfg.terminal && every%draw == 0 || every%max(1, int(2*time.Second/check)) == 0 {
			tb.put(r.lines(victimAddr))
		}
	}
}

// survivorsSee reports whether every node but the victim has n of its
// clients eligible in its table.
func (r *nodesRun) survivorsSee(addr string, n int) bool {
	for _, p := range r.procs {
		if p == r.victim {
			continue
		}
		s, ok, _ := p.status()
		if !ok || s.RemoteBy[addr] != n {
			return false
		}
	}
	return true
}

// lines is the table: a line per node.
func (r *nodesRun) lines(victimAddr string) []string {
	el := time.Since(r.start).Round(100 * time.Millisecond)
	var calls, failed, crossed int64
	for _, p := range r.procs {
		s := p.total()
		calls, failed, crossed = calls+s.Calls, failed+s.Failed, crossed+int64(s.RemotePicks)
	}
	event := "none yet"
	switch {
	case r.backAt != 0:
		event = fmt.Sprintf("%s killed at t=%v, gone from the tables after %v, restarted, used again after %v", r.victim.spec.Name,
			r.killAt.Round(100*time.Millisecond), (r.leftAt - r.killAt).Round(100*time.Millisecond), (r.backAt - r.restartAt).Round(100*time.Millisecond))
	case r.restartAt != 0:
		event = fmt.Sprintf("%s restarted at t=%v", r.victim.spec.Name, r.restartAt.Round(100*time.Millisecond))
	case r.killAt != 0:
		event = fmt.Sprintf("%s killed (SIGKILL) at t=%v", r.victim.spec.Name, r.killAt.Round(100*time.Millisecond))
	}
	out := []string{
		fmt.Sprintf("zenws demo  %d nodes  t=%-6s  balanced calls %d (failed %d), %d through other nodes' connections  last: %s",
			len(r.procs), el, calls, failed, crossed, event),
		fmt.Sprintf("%-4s %-10s %8s %7s %12s %13s %13s %10s  %s", "", "process", "calls", "failed", "local calls", "via others", "served others", "own conn", "remote clients seen"),
	}
	names := map[string]string{}
	for _, p := range r.procs {
		names[fmt.Sprintf("127.0.0.1:%d", p.spec.RemotePort)] = p.spec.Name
	}
	for _, p := range r.procs {
		s, ok, killed := p.status()
		tot := p.total()
		state := "starting"
		switch {
		case killed:
			state = "killed"
		case ok && p.runs > 1:
			state = "restarted"
		case ok:
			state = "up"
		}
		var seen []string
		for addr, k := range s.RemoteBy {
			seen = append(seen, fmt.Sprintf("%s:%d", names[addr], k))
		}
		sort.Strings(seen)
		if len(seen) == 0 {
			seen = []string{"-"}
		}
		out = append(out, fmt.Sprintf("%-4s %-10s %8d %7d %12d %13d %13d %10s  %s", p.spec.Name, state, tot.Calls, tot.Failed, tot.LocalPicks,
			tot.RemotePicks, tot.Served, fmt.Sprintf("%d/%d", s.Connected, s.Clients), strings.Join(seen, " ")))
	}
	return append(out, fmt.Sprintf("(local calls: through the node's own clients; via others: through other nodes' clients; served others: run on its clients for other nodes; %s is the node killed)", victimAddr))
}

// finish asks every node for its final checks and collects them.
func (r *nodesRun) finish(ctx context.Context) []*nodeStatus {
	for _, p := range r.procs {
		_, _ = io.WriteString(p.stdin, "end\n")
	}
	finals := make([]*nodeStatus, len(r.procs))
	deadline := time.Now().Add(finalWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for i, p := range r.procs {
			p.mu.Lock()
			finals[i] = p.final
			p.mu.Unlock()
			all = all && finals[i] != nil
		}
		if all {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return finals
}

// nodesSummary is the end of a run across nodes.
type nodesSummary struct {
	elapsed                           time.Duration
	nodes, clients                    int
	total                             nodeStatus
	victim                            string
	killAt, leftAt, restartAt, backAt time.Duration
	finals                            []*nodeStatus
	problems                          []string
	interrupted                       bool
	logs                              []string
}

func (s *nodesSummary) check() {
	t := s.total
	if t.Calls > 0 && float64(t.Failed) > 0.01*float64(t.Calls) {
		s.problems = append(s.problems, fmt.Sprintf("%d of %d balanced calls failed (more than 1%%)", t.Failed, t.Calls))
	}
	if s.interrupted {
		return
	}
	if t.Calls == 0 {
		s.problems = append(s.problems, "no balanced call was made")
	}
	if t.RemotePicks == 0 || t.Served == 0 {
		s.problems = append(s.problems, "no call left through another node's connections")
	}
	switch {
	case s.killAt == 0:
		s.problems = append(s.problems, "no node was killed")
	case s.leftAt == 0:
		s.problems = append(s.problems, fmt.Sprintf("%s's clients did not leave every table within %v of its kill", s.victim, leaveBound))
	case s.backAt == 0:
		s.problems = append(s.problems, fmt.Sprintf("%s's clients were not back in every table by the end", s.victim))
	}
	for i, f := range s.finals {
		if f == nil {
			s.problems = append(s.problems, fmt.Sprintf("n%d did not report its final checks", i+1))
			continue
		}
		for _, p := range f.Problems {
			s.problems = append(s.problems, f.Node+": "+p)
		}
	}
}

func (s nodesSummary) ok() bool { return s.total.Hung == 0 && len(s.problems) == 0 }

func (s nodesSummary) stoppedEarly() bool { return s.interrupted }

func (s nodesSummary) print(w io.Writer) {
	var b strings.Builder
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	fmt.Fprintf(&b, "\nzenws demo: %v, %d nodes (processes, automanaged membership on 127.0.0.1), %d clients each\n", r(s.elapsed), s.nodes, s.clients)
	fmt.Fprintf(&b, "  balanced calls   %d made, %d failed, %d failovers, %d without an answer in time\n", s.total.Calls, s.total.Failed, s.total.Failovers, s.total.Hung)
	fmt.Fprintf(&b, "  across nodes     %d calls through other nodes' connections (%d served for other nodes), %d through the caller's own\n",
		s.total.RemotePicks, s.total.Served, s.total.LocalPicks)
	switch {
	case s.killAt == 0:
		fmt.Fprintf(&b, "  node kill        none\n")
	default:
		fmt.Fprintf(&b, "  node kill        %s killed (SIGKILL) at t=%v", s.victim, r(s.killAt))
		if s.leftAt != 0 {
			fmt.Fprintf(&b, ", its clients gone from every table after %v", r(s.leftAt-s.killAt))
		}
		if s.restartAt != 0 {
			fmt.Fprintf(&b, ", restarted at t=%v", r(s.restartAt))
		}
		if s.backAt != 0 {
			fmt.Fprintf(&b, ", its clients used again after %v", r(s.backAt-s.restartAt))
		}
		b.WriteString("\n")
	}
	writeResult(w, &b, result{ok: s.ok(), interrupted: s.interrupted, problems: s.problems, logs: s.logs,
		good: "after the kill every client is connected, subscribed again and receiving, and in every node's table"})
}
