package cluster

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// Bounds of the operator's fields of a summary, at the sender and again
// at the receiver (another member may run other code).
const (
	maxLabel = 256
	maxText  = 1024
)

// summaryOf is the compact health of a local client that goes to other
// nodes: what a pick there uses, and what their operator's pages show.
// counts are its channels (Health pushes carry none; see channelsOf).
func summaryOf(id string, h actors.Health, counts *wire.ChannelCounts) *wire.ClientHealth {
	s := &wire.ClientHealth{
		ClientId:          id,
		State:             stateOf(h.State),
		Generation:        h.Generation,
		HeartbeatFailures: clampU32(h.HeartbeatFailures),
		Pending:           clampU32(h.Pending),
		RttP50Ns:          int64(h.RTTP50),
		RttP99Ns:          int64(h.RTTP99),
		Degraded:          h.Degraded,
		Label:             clip(h.Label, maxLabel),
		Endpoint:          clip(h.Endpoint, maxText),
		Reconnects:        h.Reconnects,
		RttLastNs:         int64(h.RTTLast),
		Channels:          counts,
	}
	if h.LastError != nil {
		s.LastError = clip(h.LastError.Error(), maxText)
	}
	if !h.ConnectedSince.IsZero() {
		s.ConnectedSinceUnixNs = h.ConnectedSince.UnixNano()
	}
	return s
}

// channelsOf is a client's ChannelCounts on the wire; nil for none.
func channelsOf(c actors.ChannelCounts) *wire.ChannelCounts {
	if c == (actors.ChannelCounts{}) {
		return nil
	}
	return &wire.ChannelCounts{
		Total: clampU32(c.Total), Active: clampU32(c.Active), Pending: clampU32(c.Pending),
		Failed: clampU32(c.Failed), Stale: clampU32(c.Stale), Resyncing: clampU32(c.Resyncing),
	}
}

// healthOf is a summary as the balancer (and operator's page) on this
// node reads it.
func healthOf(s *wire.ClientHealth) actors.Health {
	h := actors.Health{
		State:             actorsState(s.GetState()),
		Generation:        s.GetGeneration(),
		HeartbeatFailures: int(s.GetHeartbeatFailures()),
		Pending:           int(s.GetPending()),
		RTTP50:            time.Duration(max(s.GetRttP50Ns(), 0)),
		RTTP99:            time.Duration(max(s.GetRttP99Ns(), 0)),
		RTTLast:           time.Duration(max(s.GetRttLastNs(), 0)),
		Label:             clip(s.GetLabel(), maxLabel),
		Endpoint:          clip(s.GetEndpoint(), maxText),
		Reconnects:        s.GetReconnects(),
		Degraded:          s.GetDegraded(),
	}
	if t := s.GetLastError(); t != "" {
		h.LastError = &RemoteError{Text: clip(t, maxText)}
	}
	if ns := s.GetConnectedSinceUnixNs(); ns > 0 && h.State == actors.StateConnected {
		h.ConnectedSince = time.Unix(0, ns)
	}
	if c := s.GetChannels(); c != nil {
		h.ChannelCounts = actors.ChannelCounts{
			Total: int(c.GetTotal()), Active: int(c.GetActive()), Pending: int(c.GetPending()),
			Failed: int(c.GetFailed()), Stale: int(c.GetStale()), Resyncing: int(c.GetResyncing()),
		}
	}
	return h
}

// urgent: the change from old to s may change whether the client is
// picked, so it is sent at once rather than batched.
func urgent(old, s *wire.ClientHealth) bool {
	return old == nil || old.GetState() != s.GetState() || old.GetGeneration() != s.GetGeneration() ||
		old.GetHeartbeatFailures() != s.GetHeartbeatFailures() || old.GetDegraded() != s.GetDegraded()
}

// same: nothing a subscriber sees changed.
func same(old, s *wire.ClientHealth) bool {
	return old != nil && !urgent(old, s) && old.GetPending() == s.GetPending() &&
		old.GetRttP50Ns() == s.GetRttP50Ns() && old.GetRttP99Ns() == s.GetRttP99Ns() &&
		old.GetRttLastNs() == s.GetRttLastNs() && old.GetReconnects() == s.GetReconnects() &&
		old.GetConnectedSinceUnixNs() == s.GetConnectedSinceUnixNs() &&
		old.GetLabel() == s.GetLabel() && old.GetEndpoint() == s.GetEndpoint() &&
		old.GetLastError() == s.GetLastError() && sameCounts(old.GetChannels(), s.GetChannels())
}

func sameCounts(a, b *wire.ChannelCounts) bool {
	return a.GetTotal() == b.GetTotal() && a.GetActive() == b.GetActive() && a.GetPending() == b.GetPending() &&
		a.GetFailed() == b.GetFailed() && a.GetStale() == b.GetStale() && a.GetResyncing() == b.GetResyncing()
}

// clip cuts s to at most max bytes, on a rune boundary, with invalid UTF-8
// replaced (a protobuf string must be valid UTF-8: one bad label would
// fail the whole batch). The operator's page escapes and clips what it
// shows; this bounds what crosses nodes and what the table keeps.
func clip(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
func stateOf(s actors.State) wire.State {
	switch s {
	case actors.StateConnecting:
		return wire.State_STATE_CONNECTING
	case actors.StateConnected:
		return wire.State_STATE_CONNECTED
	case actors.StateReconnecting:
		return wire.State_STATE_RECONNECTING
	}
	return wire.State_STATE_DISCONNECTED
}

func actorsState(s wire.State) actors.State {
	switch s {
	case wire.State_STATE_CONNECTING:
		return actors.StateConnecting
	case wire.State_STATE_CONNECTED:
		return actors.StateConnected
	case wire.State_STATE_RECONNECTING:
		return actors.StateReconnecting
	}
	return actors.StateDisconnected
}

func clampU32(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case n > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(n)
}
