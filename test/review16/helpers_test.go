package review16

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
)

// quietSystem is an actor system whose logs go nowhere, shut down with
// the test.
func quietSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	t.Cleanup(sys.Shutdown)
	return sys
}
