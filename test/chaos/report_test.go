package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
)

// report gathers the run's figures, checks the invariants and prints them.
type report struct {
	cfg runConfig
	ran time.Duration

	faults     []faultRecord
	lastHealed time.Time

	resumed          bool
	resumedAfter     time.Duration
	channels         int
	channelsResumed  int
	samples          int
	sampleMismatches int
	sampleDetails    []string
	finalSubsOK      int
	finalSubsDetails []string

	getTime, orders, sends *opStats
	hung                   int64

	orderCount                      int
	ordersOK, ordersOKOnce          int
	ordersDoubt, ordersDoubtExec    int
	ordersUnsent, ordersUnsentExec  int
	ordersRPC, ordersRPCExec        int
	ordersTwice, ordersUntyped      int
	serverOrders, labelledExecuted  int
	twiceLabels, wrongExecLabels    []string
	notifications, unknownChannel   int64
	acks                            int64
	panicsInjected, panicsCounted   uint64
	inboundDropped, lateResponses   uint64
	reconnects, restarts            uint64
	unattributed                    uint64
	unattributedCauses              []string
	stats                           balancer.Stats
	leaked                          int
	leakDetail                      string
	stuckStages                     int
	disruptive, disruptiveObserved  int
	disruptiveWrong                 []string
	incidental                      uint64
	incidentalCauses, strictCauses  []string
	strictReconnects                uint64
	faultErrors, afterReconnectSubs []string
	restartsInWindows               uint64
	latencyRTT                      []time.Duration
	slowestRemoval                  time.Duration
}

// collect reads the figures once the workload has stopped, before shutdown.
func (rep *report) collect(r *rig, w *workload, base []actors.Health) {
	rep.getTime, rep.orders, rep.sends = &w.getTime, &w.orders, &w.sends

	// Orders: count every label's executions over every server process of
	// every venue.
	for _, o := range w.orderOutcomes() {
		exec := 0
		for _, v := range r.venues {
			exec += v.ordersByLabel(o.label)
		}
		rep.orderCount++
		rep.labelledExecuted += exec
		if exec > 1 {
			rep.ordersTwice++
			rep.twiceLabels = append(rep.twiceLabels, fmt.Sprintf("%s x%d (%s)", o.label, exec, o.class))
		}
		switch {
		case o.class == "ok":
			rep.ordersOK++
			if exec == 1 {
				rep.ordersOKOnce++
			} else {
				rep.wrongExecLabels = append(rep.wrongExecLabels, fmt.Sprintf("%s ok but executed %d times", o.label, exec))
			}
		case o.class == "untyped":
			rep.ordersUntyped++
		case strings.HasPrefix(o.class, "rpc-"):
			rep.ordersRPC++
			rep.ordersRPCExec += exec
		case o.mayBeExecuted:
			rep.ordersDoubt++
			rep.ordersDoubtExec += exec
		default:
			rep.ordersUnsent++
			rep.ordersUnsentExec += exec
			if exec > 0 {
				rep.wrongExecLabels = append(rep.wrongExecLabels, fmt.Sprintf("%s %s but executed %d times", o.label, o.class, exec))
			}
		}
	}
	for _, v := range r.venues {
		rep.serverOrders += v.orders()
	}

	// Reconnects: attribute each client's to the fault windows on its venue.
	inWindows := make([]uint64, len(r.clients))
	for _, f := range rep.faults {
		inWindows[f.venue] += f.reconnects
		rep.restartsInWindows += f.restarts
		if f.err != nil {
			rep.faultErrors = append(rep.faultErrors, fmt.Sprintf("%s on venue%d: %v", f.kind.name, f.venue+1, f.err))
		}
		if !f.subsOK {
			rep.afterReconnectSubs = append(rep.afterReconnectSubs, fmt.Sprintf("after %s: %s", f.kind.name, f.subsDetail))
		}
		switch {
		case f.kind.disruptive:
			rep.disruptive++
			rep.disruptiveObserved += int(f.reconnects)
			if f.reconnects != 1 {
				rep.disruptiveWrong = append(rep.disruptiveWrong, fmt.Sprintf("%s on venue%d: %d reconnects %v", f.kind.name, f.venue+1, f.reconnects, f.causes))
			}
		case f.kind.mayTrip:
			rep.incidental += f.reconnects
			rep.incidentalCauses = append(rep.incidentalCauses, f.causes...)
		default:
			rep.strictReconnects += f.reconnects
			rep.strictCauses = append(rep.strictCauses, f.causes...)
		}
	}
	for i, c := range r.clients {
		h, f := c.Health(), r.feeds[i]
		rep.reconnects += h.Reconnects - base[i].Reconnects
		rep.restarts += h.Restarts - base[i].Restarts
		rep.unattributed += h.Reconnects - base[i].Reconnects - inWindows[i]
		rep.panicsCounted += h.HandlerPanics - base[i].HandlerPanics
		rep.inboundDropped += h.InboundDropped - base[i].InboundDropped
		rep.lateResponses += h.LateResponses - base[i].LateResponses
		rep.panicsInjected += uint64(f.panics.Load())
		rep.notifications += f.notes.Load()
		rep.unknownChannel += f.unknown.Load()
		rep.acks += f.acks.Load()
	}
	if rep.unattributed > 0 {
		for i, f := range r.feeds {
			for _, d := range f.dropsOutside(rep.faults, i) {
				rep.unattributedCauses = append(rep.unattributedCauses, fmt.Sprintf("venue%d %s", i+1, d))
			}
		}
	}
	rep.stats = r.bal.Stats()
	rep.slowestRemoval = r.net.slowest()
	r.mu.Lock()
	rep.latencyRTT = slices.Clone(r.latencyRTT)
	r.mu.Unlock()
}

// dropsOutside lists the connections client v lost outside every fault
// window on its venue.
func (f *feed) dropsOutside(faults []faultRecord, v int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.drops {
		inside := false
		for _, r := range faults {
			if r.venue == v && !d.at.Before(r.start) && d.at.Before(r.recovered) {
				inside = true
				break
			}
		}
		if !inside {
			out = append(out, d.at.Format("15:04:05.000")+" "+d.cause)
		}
	}
	return out
}

// row is one figure of the table.
type row struct {
	name, value, want string
	ok                bool
}

func (rep *report) rows() []row {
	byKind := map[string]int{}
	for _, f := range rep.faults {
		byKind[f.kind.name]++
	}
	var kinds []string
	for _, k := range rep.cfg.kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k.name, byKind[k.name]))
	}
	allKinds := true
	for _, k := range rep.cfg.kinds {
		allKinds = allKinds && byKind[k.name] > 0
	}
	gt, od, sd := rep.getTime, rep.orders, rep.sends
	untyped := gt.class("untyped") + od.class("untyped") + sd.class("untyped")
	overruns := gt.overruns + od.overruns + sd.overruns
	maxOp := max(gt.percentile(1), od.percentile(1), sd.percentile(1))
	return []row{
		{"run", fmt.Sprintf("%s mode, %v, %d clients, %d venues behind Toxiproxy", rep.cfg.mode, rep.ran.Round(100*time.Millisecond), rep.cfg.clients, rep.cfg.clients), "", true},
		{"faults injected", fmt.Sprintf("%d: %s", len(rep.faults), strings.Join(kinds, ", ")), "every kind", allKinds},
		{"heartbeat round trip under the latency toxic", rttRange(rep.latencyRTT), ">= 100ms", !slices.ContainsFunc(rep.cfg.kinds, func(k faultKind) bool { return k.name == "latency" }) ||
			len(rep.latencyRTT) > 0 && slices.Min(rep.latencyRTT) >= 100*time.Millisecond},
		{"faults not injected or not recovered", fmt.Sprint(len(rep.faultErrors)), "0", len(rep.faultErrors) == 0},
		{"retry-safe calls (public/get_time)", fmt.Sprintf("%d/%d ok; p50 %v, p99 %v", gt.ok, gt.total, ms(gt.percentile(0.5)), ms(gt.percentile(0.99))), "all ok", gt.total > 0 && gt.failed() == 0},
		{"balanced sends (retry-safe)", fmt.Sprintf("%d/%d ok, %d answered", sd.ok, sd.total, rep.acks), "all ok", sd.total > 0 && sd.failed() == 0},
		{"orders (private/buy, unique labels)", fmt.Sprintf("%d: ok %d, lost in flight %d, never sent %d, refused %d", rep.orderCount, rep.ordersOK, rep.ordersDoubt, rep.ordersUnsent, rep.ordersRPC), "", rep.orderCount > 0},
		{"order errors", od.errorSummary(), "typed", rep.ordersUntyped == 0},
		{"orders executed twice (sum over venues per label)", fmt.Sprint(rep.ordersTwice), "0", rep.ordersTwice == 0},
		{"orders reported ok, executed exactly once", fmt.Sprintf("%d/%d", rep.ordersOKOnce, rep.ordersOK), "all", rep.ordersOKOnce == rep.ordersOK},
		{"orders never sent, executed", fmt.Sprint(rep.ordersUnsentExec), "0", rep.ordersUnsentExec == 0 && rep.ordersRPCExec == 0},
		{"orders lost in flight, executed", fmt.Sprintf("%d of %d", rep.ordersDoubtExec, rep.ordersDoubt), "<= 1 each", rep.ordersTwice == 0},
		{"orders executed by venues / by label", fmt.Sprintf("%d / %d", rep.serverOrders, rep.labelledExecuted), "equal", rep.serverOrders == rep.labelledExecuted},
		{"operations hung / past deadline+grace", fmt.Sprintf("%d / %d (deadline %v, slowest %v)", rep.hung, overruns, rep.cfg.opDeadline, ms(maxOp)), "0 / 0", rep.hung == 0 && overruns == 0},
		{"untyped errors", fmt.Sprint(untyped), "0", untyped == 0},
		{"handler panics injected / counted / escaped", fmt.Sprintf("%d / %d / 0", rep.panicsInjected, rep.panicsCounted), "equal", rep.panicsInjected == rep.panicsCounted && rep.panicsInjected > 0},
		{"reconnects in reset/half-open/restart/refuse windows", fmt.Sprintf("%d for %d faults", rep.disruptiveObserved, rep.disruptive), "1 per fault", len(rep.disruptiveWrong) == 0},
		{"incidental reconnects under latency/bandwidth", fmt.Sprintf("%d %s", rep.incidental, causes(rep.incidentalCauses)), "counted", true},
		{"reconnects under slicer", fmt.Sprintf("%d %s", rep.strictReconnects, causes(rep.strictCauses)), "0", rep.strictReconnects == 0},
		{"reconnects outside fault windows", fmt.Sprintf("%d %s", rep.unattributed, strings.Join(rep.unattributedCauses, "; ")), "0", rep.unattributed == 0},
		{"total reconnects / supervisor restarts", fmt.Sprintf("%d / %d", rep.reconnects, rep.restarts), "", true},
		{"subscriptions right after each fault", fmt.Sprintf("%d/%d venues matched", len(rep.faults)-len(rep.afterReconnectSubs), len(rep.faults)), "all", len(rep.afterReconnectSubs) == 0},
		{"subscription samples during the run", fmt.Sprintf("%d, %d mismatched", rep.samples, rep.sampleMismatches), "0 mismatched", rep.samples > 0 && rep.sampleMismatches == 0},
		{"live connections at the end, server set = client set", fmt.Sprintf("%d/%d", rep.finalSubsOK, rep.cfg.clients), "all", rep.finalSubsOK == rep.cfg.clients},
		{"channels resumed after the last fault", fmt.Sprintf("%d/%d within %v", rep.channelsResumed, rep.channels, ms(rep.resumedAfter)), "all", rep.resumed && rep.channelsResumed == rep.channels},
		{"notifications delivered / on unknown channels / dropped", fmt.Sprintf("%d / %d / %d", rep.notifications, rep.unknownChannel, rep.inboundDropped), "- / 0 / 0", rep.unknownChannel == 0 && rep.inboundDropped == 0},
		{"late responses (after their request gave up), dropped", fmt.Sprint(rep.lateResponses), "", true},
		{"balancer failovers / no-connection answers", fmt.Sprintf("%d / %d", rep.stats.Failovers, rep.stats.NoConnections), "", true},
		{"goroutines left after shutdown", fmt.Sprint(rep.leaked), "0", rep.leaked == 0},
		{"Toxiproxy goroutines stranded by a cut (its bug, ignored)", fmt.Sprint(rep.stuckStages), "", true},
		{"slowest toxic removal (Toxiproxy flushing a dead link)", ms(rep.slowestRemoval).String(), fmt.Sprintf("< %v", removeWithin), rep.slowestRemoval < removeWithin},
	}
}

// causes summarises reconnect causes as "(heartbeat 2, write-timeout 1)".
func causes(cs []string) string {
	if len(cs) == 0 {
		return ""
	}
	n := map[string]int{}
	for _, c := range cs {
		n[c]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// rttRange is "min-max" of the round trips.
func rttRange(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	return fmt.Sprintf("%v-%v", ms(slices.Min(d)), ms(slices.Max(d)))
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// check fails the test for every invariant that does not hold, with the
// details that explain it.
func (rep *report) check(t *testing.T) {
	t.Helper()
	for _, r := range rep.rows() {
		if !r.ok {
			t.Errorf("invariant failed: %s = %s (want %s)", r.name, r.value, r.want)
		}
	}
	for _, list := range [][]string{rep.faultErrors, rep.disruptiveWrong, rep.afterReconnectSubs, rep.sampleDetails,
		rep.finalSubsDetails, rep.twiceLabels, rep.wrongExecLabels} {
		for i, d := range list {
			if i == 10 {
				t.Errorf("  ... %d more", len(list)-10)
				break
			}
			t.Errorf("  %s", d)
		}
	}
	for _, s := range []*opStats{rep.getTime, rep.sends} {
		if s.failed() > 0 {
			t.Errorf("  retry-safe failures: %s", s.errorSummary())
		}
	}
	for _, s := range []*opStats{rep.getTime, rep.orders, rep.sends} {
		for _, u := range s.untyped {
			t.Errorf("  untyped error: %s", u)
		}
	}
	if rep.leaked > 0 {
		t.Errorf("  %s", rep.leakDetail)
	}
}

// print logs every fault and the figures table.
func (rep *report) print(t *testing.T) {
	t.Helper()
	var b strings.Builder
	b.WriteString("faults (start relative to the first):\n")
	for _, f := range rep.faults {
		fmt.Fprintf(&b, "  %-9s venue%-2d at %6v healed +%-6v recovered +%-6v reconnects %d %s\n",
			f.kind.name, f.venue+1, ms(f.start.Sub(rep.faults[0].start)), ms(f.healed.Sub(f.start)), ms(f.recovered.Sub(f.healed)),
			f.reconnects, causes(f.causes))
	}
	t.Log(b.String())
	t.Log("figures:\n" + rep.table())
}

func (rep *report) table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\twant\tok")
	for _, r := range rep.rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.name, r.value, r.want, mark(r.ok))
	}
	_ = tw.Flush()
	return b.String()
}

// markdown is the figures table for docs/reliability.md.
func (rep *report) markdown() string {
	var b strings.Builder
	b.WriteString("| figure | value | want | ok |\n|---|---|---|---|\n")
	for _, r := range rep.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, r.value, r.want, mark(r.ok))
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
