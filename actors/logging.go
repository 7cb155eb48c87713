package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// ActorSystemLogger routes Proto.Actor's own log output (log/slog) into l,
// so one zap logger holds both zenws's and the actor system's lines:
//
//	sys := actor.NewActorSystem(actors.ActorSystemLogger(logger))
//
// A few framework paths still print through the standard log package; they
// are not covered.
func ActorSystemLogger(l *zap.Logger) actor.ConfigOption {
	return actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(zapslog.NewHandler(l.Core(), zapslog.WithName("protoactor"))).With("system", s.ID)
	})
}
