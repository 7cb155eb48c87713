package actors_test

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
)

// A nil logger for the actor system is "no lines", not a crash (before: a
// nil dereference inside ActorSystemLogger).
func TestActorSystemLoggerNil(t *testing.T) {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(nil))
	sys.Logger().Info("dropped")
	sys.Shutdown()
}
