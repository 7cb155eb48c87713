package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// table draws snapshots: redrawn in place on a terminal, appended as plain
// lines otherwise.
type table struct {
	out   io.Writer
	live  bool
	lines int // lines drawn last time (live mode)
}

func (t *table) draw(s snapshot) {
	var b strings.Builder
	if t.live && t.lines > 0 {
		fmt.Fprintf(&b, "\033[%dA", t.lines) // back to the table's first line
	}
	if !t.live {
		fmt.Fprintf(&b, "t=%-5s calls %d (failed %d, failovers %d) faults %d reconnects %d notifications %d eligible %d/%d last fault: %s\n",
			s.elapsed.Round(100*time.Millisecond), s.calls, s.failed, s.failovers, s.faults, s.totalReconnects, s.totalNotes, s.eligible, s.pooled, s.lastFault)
		_, _ = io.WriteString(t.out, b.String())
		return
	}
	lines := []string{
		fmt.Sprintf("zenws demo  t=%-6s  balanced calls %d (failed %d, failovers %d)  faults %d  last: %s",
			s.elapsed.Round(100*time.Millisecond), s.calls, s.failed, s.failovers, s.faults, s.lastFault),
		fmt.Sprintf("%-4s %-13s %4s %9s %9s %7s %10s %8s %6s %8s %8s %8s",
			"", "state", "gen", "rtt p50", "rtt p99", "pending", "reconnects", "restarts", "score", "in", "out", "notifs"),
	}
	for _, r := range s.rows {
		h := r.health
		state := h.State.String()
		if !r.eligible && h.State.String() == "connected" {
			state += "*"
		}
		lines = append(lines, fmt.Sprintf("%-4s %-13s %4d %9s %9s %7d %10d %8d %6.0f %8d %8d %8d",
			r.name, state, h.Generation, dur(h.RTTP50), dur(h.RTTP99), h.Pending, h.Reconnects, h.Restarts,
			r.score, h.MessagesIn, h.MessagesOut, r.notifications))
	}
	lines = append(lines, fmt.Sprintf("pool: %d of %d eligible   (* connected but not eligible: heartbeat failing)", s.eligible, s.pooled))
	for _, l := range lines {
		b.WriteString("\033[2K") // clear the line
		b.WriteString(l)
		b.WriteByte('\n')
	}
	t.lines = len(lines)
	_, _ = io.WriteString(t.out, b.String())
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dus", d.Microseconds())
	default:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
}
