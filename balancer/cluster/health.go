package cluster

import (
	"math"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// summaryOf is the compact health of a local client that goes to other
// nodes: what a pick there uses.
func summaryOf(id string, h actors.Health) *wire.ClientHealth {
	return &wire.ClientHealth{
		ClientId:          id,
		State:             stateOf(h.State),
		Generation:        h.Generation,
		HeartbeatFailures: clampU32(h.HeartbeatFailures),
		Pending:           clampU32(h.Pending),
		RttP50Ns:          int64(h.RTTP50),
		RttP99Ns:          int64(h.RTTP99),
	}
}

// healthOf is a summary as the balancer on this node reads it.
func healthOf(s *wire.ClientHealth) actors.Health {
	return actors.Health{
		State:             actorsState(s.GetState()),
		Generation:        s.GetGeneration(),
		HeartbeatFailures: int(s.GetHeartbeatFailures()),
		Pending:           int(s.GetPending()),
		RTTP50:            time.Duration(s.GetRttP50Ns()),
		RTTP99:            time.Duration(s.GetRttP99Ns()),
	}
}

// urgent: the change from old to s may change whether the client is
// picked, so it is sent at once rather than batched.
func urgent(old, s *wire.ClientHealth) bool {
	return old == nil || old.GetState() != s.GetState() || old.GetGeneration() != s.GetGeneration() ||
		old.GetHeartbeatFailures() != s.GetHeartbeatFailures()
}

// same: nothing a subscriber sees changed.
func same(old, s *wire.ClientHealth) bool {
	return old != nil && !urgent(old, s) && old.GetPending() == s.GetPending() &&
		old.GetRttP50Ns() == s.GetRttP50Ns() && old.GetRttP99Ns() == s.GetRttP99Ns()
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
