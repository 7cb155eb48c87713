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
		fmt.Fprintf(&b, "t=%-5s calls %d (failed %d, failovers %d) faults %d reconnects %d notifications %d eligible %d/%d book gaps: single %d, redundant feed %d; last fault: %s\n",
			s.elapsed.Round(100*time.Millisecond), s.calls, s.failed, s.failovers, s.faults, s.totalReconnects, s.totalNotes, s.eligible, s.pooled, s.singleGaps, s.feed.gaps, s.lastFault)
		// The clients a pick skips, and why.
		for _, r := range s.rows {
			if r.notPicked != "" {
				fmt.Fprintf(&b, "  %s not picked: %s; last error: %s\n", r.name, r.notPicked, lastError(r.health.LastError, 200))
			}
		}
		_, _ = io.WriteString(t.out, b.String())
		return
	}
	lines := []string{
		fmt.Sprintf("zenws demo  t=%-6s  balanced calls %d (failed %d, failovers %d)  faults %d  last: %s",
			s.elapsed.Round(100*time.Millisecond), s.calls, s.failed, s.failovers, s.faults, s.lastFault),
		fmt.Sprintf("%-4s %-13s %4s %9s %9s %7s %10s %8s %10s %8s %8s %8s  %-32s  %s",
			"", "state", "gen", "rtt p50", "rtt p99", "pending", "reconnects", "restarts", s.figure, "in", "out", "notifs", "not picked because", "last error"),
	}
	for _, r := range s.rows {
		h := r.health
		state := h.State.String()
		if !r.eligible && h.State.String() == "connected" {
			state += "*"
		}
		why := r.notPicked
		if why == "" {
			why = "-"
		}
		lines = append(lines, fmt.Sprintf("%-4s %-13s %4d %9s %9s %7d %10d %8d %10s %8d %8d %8d  %-32s  %s",
			r.name, state, h.Generation, dur(h.RTTP50), dur(h.RTTP99), h.Pending, h.Reconnects, h.Restarts,
			r.figure, h.MessagesIn, h.MessagesOut, r.notifications, why, lastError(h.LastError, 60)))
	}
	lines = append(lines, fmt.Sprintf("pool: %d of %d eligible   (%s: what the balancer's strategy compares; * connected but not eligible)", s.eligible, s.pooled, s.figure),
		fmt.Sprintf("order book: single subscriptions %d gap notices; redundant feed (%d copies) %d gaps, %d duplicates, %d changes in order",
			s.singleGaps, s.feedCopies, s.feed.gaps, s.feed.duplicates, s.feed.changes))
	t.write(&b, lines)
}

// put draws lines: in place on a terminal, appended otherwise.
func (t *table) put(lines []string) {
	var b strings.Builder
	if t.live && t.lines > 0 {
		fmt.Fprintf(&b, "\033[%dA", t.lines)
	}
	t.write(&b, lines)
}

func (t *table) write(b *strings.Builder, lines []string) {
	for _, l := range lines {
		if t.live {
			b.WriteString("\033[2K") // clear the line
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if t.live {
		t.lines = len(lines)
	}
	_, _ = io.WriteString(t.out, b.String())
}

// lastError is a client's last error on one line, at most n runes. The
// client has already redacted it (its URL's secrets, headers, auth).
func lastError(err error, n int) string {
	if err == nil {
		return "-"
	}
	s := strings.Join(strings.Fields(err.Error()), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
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
