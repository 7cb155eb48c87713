package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Units of a row's values.
const (
	unitRate     = "msgs/s"
	unitCallRate = "calls/s"
	unitDuration = "ns"
	unitBytes    = "B"
	unitCount    = ""
)

// goalKind says how a goal is checked.
type goalKind int

const (
	noGoal       goalKind = iota
	atLeastRatio          // ratio to the baseline >= value
	atMostRatio           // ratio to the baseline <= value
	atMostAbs             // value itself <= value
)

// goal is what a zenws contender must reach on a row.
type goal struct {
	kind  goalKind
	value float64
}

func (g goal) String() string {
	switch g.kind {
	case atLeastRatio:
		return fmt.Sprintf(">= %.1fx bare", g.value)
	case atMostRatio:
		return fmt.Sprintf("<= %.1fx bare", g.value)
	case atMostAbs:
		return "<= " + time.Duration(g.value).String()
	}
	return ""
}

// met checks v (and its ratio r to the baseline) against the goal.
func (g goal) met(v, r float64) bool {
	switch g.kind {
	case atLeastRatio:
		return r >= g.value
	case atMostRatio:
		return r <= g.value
	case atMostAbs:
		return v <= g.value
	}
	return true
}

// row is one line of the table.
type row struct {
	key    string
	label  string
	unit   string
	higher bool // higher is better
	ratio  bool // show the ratio to the baseline (timings; not counts)
	redial bool // the harness redials for contenders that do not reconnect
	worst  bool // the worst value over rounds, not the median
	goal   goal
}

// Results holds every round's value per row and contender.
type Results struct {
	rows     []row
	names    []string
	cs       []Contender
	values   map[string]map[string][]float64 // row key -> contender -> per round
	Failures []Failure                       // runs that failed, and why
}

// Failure is a run that did not complete; its values are left out of the
// medians.
type Failure struct {
	Round     int
	Workload  string
	Contender Contender
	Err       error
}

// String says which run failed and why.
func (f Failure) String() string {
	return fmt.Sprintf("round %d, %s, %s: %v", f.Round, f.Workload, f.Contender.Name, f.Err)
}

// Ours reports whether the failure is the baseline's or a zenws
// contender's, so the harness's or zenws's own problem, not only a finding
// about a third-party library.
func (f Failure) Ours() bool { return f.Contender.Goals || f.Contender.Name == baseline }

func newResults(ws []workload, cs []Contender) *Results {
	r := &Results{cs: cs, values: map[string]map[string][]float64{}}
	for _, c := range cs {
		r.names = append(r.names, c.Name)
	}
	for _, w := range ws {
		for _, rw := range w.rows {
			r.rows = append(r.rows, rw)
			r.values[rw.key] = map[string][]float64{}
		}
	}
	return r
}

func (r *Results) add(contender string, vals map[string]float64) {
	for k, v := range vals {
		r.values[k][contender] = append(r.values[k][contender], v)
	}
}

// value is the row's figure for a contender over the rounds, and whether
// there is one.
func (r *Results) value(rw row, contender string) (float64, bool) {
	vs := r.values[rw.key][contender]
	if len(vs) == 0 {
		return 0, false
	}
	if rw.worst {
		return slices.Max(vs), true
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// better reports whether a is better than b on rw, and whether they tie
// (within 2%).
func better(rw row, a, b float64) (ahead, tie bool) {
	if math.Abs(a-b) <= 0.02*math.Max(math.Abs(a), math.Abs(b)) {
		return false, true
	}
	if rw.higher {
		return a > b, false
	}
	return a < b, false
}

// Print writes the table: per row and contender the median over rounds
// (the worst for a "max" row) and the ratio to the baseline, then per
// goal contender whether its goal is met and whether it is ahead of recws.
func (r *Results) Print(w io.Writer) {
	var goalNames []string
	for _, c := range r.cs {
		if c.Goals {
			goalNames = append(goalNames, c.Name)
		}
	}
	head := append([]string{"workload"}, r.names...)
	head = append(head, "goal")
	for _, g := range goalNames {
		head = append(head, g+": goal", g+": vs recws")
	}
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(head)))
	for _, rw := range r.rows {
		base, haveBase := r.value(rw, baseline)
		cells := []string{rw.label + unitNote(rw)}
		for _, c := range r.cs {
			v, ok := r.value(rw, c.Name)
			if !ok {
				cells = append(cells, "n/a")
				continue
			}
			cell := format(rw.unit, v)
			if rw.ratio && haveBase && base != 0 {
				cell += fmt.Sprintf(" (%.2f)", v/base)
			}
			if rw.redial && !c.Reconnects {
				cell += " redial"
			}
			cells = append(cells, cell)
		}
		cells = append(cells, rw.goal.String())
		for _, g := range goalNames {
			v, ok := r.value(rw, g)
			switch {
			case !ok:
				cells = append(cells, "n/a")
			case rw.goal.kind == noGoal:
				cells = append(cells, "")
			case rw.goal.met(v, v/base):
				cells = append(cells, "met")
			default:
				cells = append(cells, "**missed**")
			}
			rv, ok2 := r.value(rw, "recws")
			switch ahead, tie := better(rw, v, rv); {
			case !ok || !ok2:
				cells = append(cells, "n/a")
			case tie:
				cells = append(cells, "tie")
			case ahead:
				cells = append(cells, "ahead")
			default:
				cells = append(cells, "**behind**")
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	if len(r.Failures) > 0 {
		fmt.Fprintln(w, "\nRuns that failed (left out of the medians):")
		for _, f := range r.Failures {
			fmt.Fprintln(w, "- "+f.String())
		}
	}
}

// unitNote says, after a row's label, what is better.
func unitNote(rw row) string {
	switch {
	case rw.higher:
		return " (" + rw.unit + ", higher is better)"
	case rw.unit == unitDuration || rw.unit == unitBytes:
		return " (lower is better)"
	}
	return ""
}

// format writes v in its unit: durations in us or ms, rates and bytes
// with thousands separators, counts with two decimals.
func format(unit string, v float64) string {
	switch unit {
	case unitDuration:
		d := time.Duration(v)
		if d < time.Millisecond {
			return fmt.Sprintf("%.0f us", v/1e3)
		}
		return fmt.Sprintf("%.1f ms", v/1e6)
	case unitRate, unitCallRate:
		return thousands(v)
	case unitBytes:
		return fmt.Sprintf("%.1f KiB", v/1024)
	}
	return fmt.Sprintf("%.2f", v)
}

// thousands formats v rounded, with thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", math.Abs(v))
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}
