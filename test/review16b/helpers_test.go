package review16b

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/opspage"
)

// quietSystem is an actor system whose logs go nowhere, shut down with
// the test.
func quietSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	t.Cleanup(sys.Shutdown)
	return sys
}

// clientsOf is the first pool's clients of a page (none without a pool).
func clientsOf(p opspage.Page) []opspage.Client {
	if len(p.Pools) == 0 {
		return nil
	}
	return p.Pools[0].Clients
}
