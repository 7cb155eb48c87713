package balancer

import (
	"fmt"

	"github.com/zenws/zenws/actors"
)

// notPicked explains a pick for one client from its last pushed health:
// why a pick skips it, or ranks it after others; "" when it competes on
// the strategy's figures alone. PoolHealth shows it as
// ClientHealth.NotPicked; eligible must agree with it (a client is
// eligible exactly when this is "" or it is degraded).
func notPicked(h *actors.Health) string {
	switch {
	case h == nil:
		return "no health yet"
	case h.State != actors.StateConnected:
		return "not connected (" + h.State.String() + ")"
	case h.HeartbeatFailures > 0:
		return fmt.Sprintf("heartbeat failing (%d unanswered)", h.HeartbeatFailures)
	case degraded(h):
		return "degraded: ranked after healthy clients"
	}
	return ""
}

// degraded reports whether a connected client's wanted channels are not
// all active (actors.Health.Degraded): still eligible, but picked only when
// no healthy client is left. The one place that reads it.
func degraded(h *actors.Health) bool { return h != nil && h.Degraded }
