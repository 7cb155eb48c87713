// Package guardian holds the one guardian strategy of zenws: the parent of
// the actors zenws spawns from the root context without a supervisor of
// the user's (clients started with actors.Connect, supervisors started
// with supervision.Start). An actor that fails under it is stopped, not
// restarted: its own code decided that it cannot go on (a client that
// gave up, a supervisor that escalated).
package guardian

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Stop is the strategy to pass to actor.WithGuardian. Proto.Actor keeps one
// guardian actor per strategy value for the life of the system and never
// removes it, so zenws uses this one value everywhere: one guardian per
// actor system, not one per client or supervisor. It holds no state (the
// restart statistics live in each child).
var Stop = actor.NewOneForOneStrategy(0, time.Second, func(any) actor.Directive { return actor.StopDirective })
