package opspage

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
)

// Schema names the JSON layout this package writes (the "schema" field of
// every document); a change that is not an addition gets a new name.
const Schema = "zenws.opspage/v1"

// Bounds on what one answer holds, whatever the pool and its users put in
// labels, channel names and errors.
const (
	DefaultLimit   = 100  // clients per pool on one page, unless ?limit says otherwise
	MaxLimit       = 1000 // the most ?limit may ask for
	MaxChannelList = 1000 // channels listed on a details view
	maxLabels      = 100  // venue labels in a pool's summary (the rest are counted)
	maxShort       = 256  // bytes of a label, channel name, node or pool name shown
	maxText        = 1024 // bytes of an error shown
)

// Page is the JSON document of the page (schema "zenws.opspage/v1").
type Page struct {
	Schema      string    `json:"schema"`
	GeneratedAt time.Time `json:"generated_at"`
	Pools       []Pool    `json:"pools"`
}

// Pool is one balancer of the page.
type Pool struct {
	Name          string `json:"name"`
	Strategy      string `json:"strategy"`
	Failovers     uint64 `json:"failovers"`
	NoConnections uint64 `json:"no_connections"`
	// Total clients in the table; Eligible of them may be picked; Healthy
	// of them compete on the strategy's figures (NotPicked "").
	Total    int `json:"total"`
	Eligible int `json:"eligible"`
	Healthy  int `json:"healthy"`
	// States counts the clients by state ("connected", "reconnecting",
	// ..., "unknown" before a client's first health push).
	States map[string]int `json:"states"`
	// Labels is a summary per venue label, sorted by label, at most 100
	// (LabelsOmitted counts the others).
	Labels        []LabelCount `json:"labels"`
	LabelsOmitted int          `json:"labels_omitted"`
	// Offset and Limit select Clients from the table (ordered by node, then
	// PID id): ?offset= and ?limit=.
	Offset  int      `json:"offset"`
	Limit   int      `json:"limit"`
	Clients []Client `json:"clients"`
}

// LabelCount is one venue label of a pool: how many clients carry it, how
// many of them are healthy (what the readiness check counts).
type LabelCount struct {
	Label   string `json:"label"`
	Total   int    `json:"total"`
	Healthy int    `json:"healthy"`
}

// Client is one client of a pool as the page shows it. Strings are
// clipped (labels, channel names, nodes to 256 bytes; errors to 1,024) and
// control characters and invalid UTF-8 are written as \uXXXX, so that HTML
// and JSON show the same text.
type Client struct {
	// ID is the client's PID as "<address>/<id>": the key of the details
	// view (?pool=<name>&client=<id>).
	ID       string `json:"id"`
	Node     string `json:"node"` // "local", or the address of the node holding it
	Remote   bool   `json:"remote"`
	Label    string `json:"label"`
	Endpoint string `json:"endpoint"` // redacted URL
	State    string `json:"state"`    // "connected", "connecting", "reconnecting", "disconnected", or "unknown"
	Eligible bool   `json:"eligible"`
	// NotPicked is balancer.ClientHealth.NotPicked: why a pick skips the
	// client or ranks it after others; "" when it competes.
	NotPicked         string `json:"not_picked"`
	Degraded          bool   `json:"degraded"`
	Generation        uint64 `json:"generation"`
	HeartbeatFailures int    `json:"heartbeat_failures"`
	RTTLastNs         int64  `json:"rtt_last_ns"`
	RTTP50Ns          int64  `json:"rtt_p50_ns"`
	RTTP99Ns          int64  `json:"rtt_p99_ns"`
	PeakEWMANs        int64  `json:"peak_ewma_ns"`
	// InFlight is balanced operations in flight through the client;
	// Pending its own requests waiting for an answer.
	InFlight     int64   `json:"in_flight"`
	Pending      int     `json:"pending"`
	Load         float64 `json:"load"`
	Score        float64 `json:"score"`
	RecentErrors float64 `json:"recent_errors"`
	Picks        uint64  `json:"picks"`
	Failures     uint64  `json:"failures"`
	Reconnects   uint64  `json:"reconnects"`
	// ConnectedSince is null while not connected.
	ConnectedSince *time.Time `json:"connected_since"`
	LastError      string     `json:"last_error"` // redacted by the client
	// Channels counts the wanted channels by state (for a client of
	// another node, as its node last sent them); null for a local client
	// the page could not ask.
	Channels *ChannelCounts `json:"channels"`
	// ChannelList is on the details view only: at most 1,000 channels,
	// sorted by name (ChannelCounts.Total says how many there are); empty
	// for a client of another node (see that node's page).
	ChannelList []Channel `json:"channel_list,omitempty"`
}

// ChannelCounts counts a client's channels by state.
type ChannelCounts struct {
	Total     int `json:"total"`
	Active    int `json:"active"`
	Pending   int `json:"pending"`
	Failed    int `json:"failed"`
	Stale     int `json:"stale"`
	Resyncing int `json:"resyncing"`
}

// Channel is one channel of a client's details view.
type Channel struct {
	Channel     string     `json:"channel"`
	State       string     `json:"state"`
	Wanted      bool       `json:"wanted"`
	Since       *time.Time `json:"since"`
	Error       string     `json:"error"`
	NextRetry   *time.Time `json:"next_retry"`
	Attempts    int        `json:"attempts"`
	LastMessage *time.Time `json:"last_message"`
}

// noHealth is balancer.ClientHealth.NotPicked for a client that has not
// pushed its health yet.
const noHealth = "no health yet"

// key is a PID as the page names it.
func key(p *actor.PID) string {
	if p == nil {
		return ""
	}
	return p.Address + "/" + p.Id
}

// healthy: competes on the strategy's figures (connected, heartbeat
// answered, every wanted channel active).
func healthy(ch *balancer.ClientHealth) bool { return ch.Eligible && ch.NotPicked == "" }

// stateOf names a client's state, "unknown" before its first push.
func stateOf(ch *balancer.ClientHealth) string {
	if ch.NotPicked == noHealth {
		return "unknown"
	}
	return ch.Health.State.String()
}

// sortTable orders a pool's table by node, then PID id: local clients
// first, a stable order across refreshes.
// The router's table is in that order already, but for local first: the
// sort costs a pass, and nothing is allocated per comparison.
func sortTable(t []balancer.ClientHealth) {
	slices.SortStableFunc(t, func(a, b balancer.ClientHealth) int {
		switch {
		case a.Remote != b.Remote && !a.Remote:
			return -1
		case a.Remote != b.Remote:
			return 1
		case a.PID == nil || b.PID == nil:
			return cmp.Compare(boolInt(a.PID != nil), boolInt(b.PID != nil))
		}
		return cmp.Or(strings.Compare(a.PID.Address, b.PID.Address), strings.Compare(a.PID.Id, b.PID.Id))
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// summarize fills a pool's counts from its whole table.
func summarize(p *Pool, t []balancer.ClientHealth) {
	p.Total = len(t)
	p.States = map[string]int{}
	labels := map[string]*LabelCount{}
	for i := range t {
		ch := &t[i]
		if ch.Eligible {
			p.Eligible++
		}
		ok := healthy(ch)
		if ok {
			p.Healthy++
		}
		p.States[stateOf(ch)]++
		l := labels[ch.Health.Label]
		if l == nil {
			l = &LabelCount{Label: clip(ch.Health.Label, maxShort)}
			labels[ch.Health.Label] = l
		}
		l.Total++
		if ok {
			l.Healthy++
		}
	}
	p.Labels = make([]LabelCount, 0, min(len(labels), maxLabels))
	for _, l := range labels {
		p.Labels = append(p.Labels, *l)
	}
	sort.Slice(p.Labels, func(i, j int) bool { return p.Labels[i].Label < p.Labels[j].Label })
	if len(p.Labels) > maxLabels {
		p.LabelsOmitted = len(p.Labels) - maxLabels
		p.Labels = p.Labels[:maxLabels]
	}
}

// clientOf is one row. full is the local client's own Health (with its
// channels) or nil; details adds the channel list. What a pick reads
// (state, generation, heartbeat failures, degraded) comes from the table,
// so that it agrees with NotPicked; the other figures of a local client
// from its own Health, fresher than its last push (a push follows a change
// of state, not every round trip).
func clientOf(ch *balancer.ClientHealth, full *actors.Health, details bool) Client {
	h := &ch.Health
	if full != nil {
		h = full
	}
	c := Client{
		ID:                clip(key(ch.PID), maxShort),
		Node:              "local",
		Remote:            ch.Remote,
		Label:             clip(h.Label, maxShort),
		Endpoint:          clip(h.Endpoint, maxText),
		State:             stateOf(ch),
		Eligible:          ch.Eligible,
		NotPicked:         ch.NotPicked,
		Degraded:          ch.Health.Degraded,
		Generation:        ch.Health.Generation,
		HeartbeatFailures: ch.Health.HeartbeatFailures,
		RTTLastNs:         int64(h.RTTLast),
		RTTP50Ns:          int64(h.RTTP50),
		RTTP99Ns:          int64(h.RTTP99),
		PeakEWMANs:        int64(ch.PeakEWMA),
		InFlight:          ch.Outstanding,
		Pending:           h.Pending,
		Load:              finite(ch.Load),
		Score:             finite(ch.Score),
		RecentErrors:      finite(ch.RecentErrors),
		Picks:             ch.Picks,
		Failures:          ch.Failures,
		Reconnects:        h.Reconnects,
		ConnectedSince:    timeOrNil(h.ConnectedSince),
		LastError:         errText(h.LastError),
	}
	if ch.Remote && ch.PID != nil {
		c.Node = clip(ch.PID.Address, maxShort)
	}
	switch {
	case full != nil:
		c.Channels = countsOf(full.ChannelCounts)
	case ch.Remote:
		c.Channels = countsOf(ch.Health.ChannelCounts) // sent by its node (balancer/cluster)
		return c
	default:
		return c
	}
	if details {
		list := full.Channels[:min(len(full.Channels), MaxChannelList)]
		c.ChannelList = make([]Channel, 0, len(list))
		for _, s := range list {
			c.ChannelList = append(c.ChannelList, Channel{
				Channel:     clip(s.Channel, maxShort),
				State:       s.State.String(),
				Wanted:      s.Wanted,
				Since:       timeOrNil(s.Since),
				Error:       errText(s.Err),
				NextRetry:   timeOrNil(s.NextRetry),
				Attempts:    s.Attempts,
				LastMessage: timeOrNil(s.LastMessage),
			})
		}
	}
	return c
}

func countsOf(n actors.ChannelCounts) *ChannelCounts {
	return &ChannelCounts{Total: n.Total, Active: n.Active, Pending: n.Pending, Failed: n.Failed,
		Stale: n.Stale, Resyncing: n.Resyncing}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// finite keeps NaN and infinities out of the JSON (encoding/json refuses
// them): a never-measured client's load may be +Inf.
func finite(f float64) float64 {
	switch {
	case f != f:
		return 0
	case f > 1e300:
		return 1e300
	case f < -1e300:
		return -1e300
	}
	return f
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return clip(err.Error(), maxText)
}

// clip makes s safe to show: at most max bytes of it (cut on a rune
// boundary, with the number of bytes left out), each control character and
// invalid byte written as \uXXXX (so a label cannot forge lines or hide
// text), everything else as it is. HTML escaping is html/template's job.
func clip(s string, max int) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			clean = false
			break
		}
	}
	if clean && len(s) <= max {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + 32)
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		piece := string(r)
		switch {
		case r == utf8.RuneError && n <= 1:
			piece = fmt.Sprintf(`\u%04x`, s[i])
		case !unicode.IsPrint(r) && r != ' ':
			piece = fmt.Sprintf(`\u%04x`, r)
		}
		if b.Len()+len(piece) > max {
			break
		}
		b.WriteString(piece)
		i += n
	}
	if i < len(s) {
		fmt.Fprintf(&b, "… (%d more bytes)", len(s)-i)
	}
	return b.String()
}
