package supervision

import (
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
)

// IntensityError is the reason a supervisor escalates with when
// WithSupervisorIntensity's limit is crossed.
type IntensityError struct {
	Restarts int
	Within   time.Duration
	Last     any // the failure that crossed the limit
}

// Error implements the error interface.
func (e *IntensityError) Error() string {
	return fmt.Sprintf("zenws: more than %d client restarts within %v across the supervisor; last failure: %v", e.Restarts, e.Within, e.Last)
}

// strategy is the ClientSupervisor's supervisor strategy. Proto.Actor calls
// HandleFailure on the supervising actor's own goroutine; the mutex only
// guards against one strategy value serving several supervisors.
type strategy struct {
	o        options
	mu       sync.Mutex
	restarts map[string][]time.Time // per client: restarts inside the window
	all      map[string][]time.Time // per supervisor: restarts inside the intensity window
	reasons  map[string]any         // why a client was stopped, for ClientDisconnected
}

// NewStrategy returns the supervisor strategy a ClientSupervisor uses, for
// your own parent actor of actors.Props clients (pattern 3):
//
//	props := actor.PropsFromProducer(newMyParent, actor.WithSupervisor(supervision.NewStrategy()))
//
// A client that fails (a crash, or its reconnect attempts spent) is
// restarted with the same PID while its budget (WithRestartBudget) allows,
// and stopped for good after; a client that fails before it ever connected
// is stopped without a restart. Events are published as for a supervisor.
func NewStrategy(opts ...Option) actor.SupervisorStrategy { return newStrategy(newOptions(opts)) }

func newStrategy(o options) *strategy {
	return &strategy{o: o, restarts: map[string][]time.Time{}, all: map[string][]time.Time{}, reasons: map[string]any{}}
}

// HandleFailure decides for one failed client.
func (s *strategy) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, message any) {
	supPID := supervisorPID(sup)
	log := s.o.logger.With(zap.Stringer("client", child), zap.Any("reason", reason))
	now := time.Now()

	s.mu.Lock()
	if actors.NewClient(sys, child).Health().Generation == 0 {
		// It never connected: the first connect failed. StartClient returns
		// that error and must leave no child behind.
		s.reasons[child.Id] = reason
		s.mu.Unlock()
		log.Info("client failed before its first connection; stopping it")
		sup.StopChildren(child)
		return
	}
	recent := prune(s.restarts[child.Id], now, s.o.within)
	if len(recent) >= s.o.maxRestarts {
		s.restarts[child.Id] = recent
		s.reasons[child.Id] = reason
		s.mu.Unlock()
		log.Warn("restart budget spent; stopping the client for good",
			zap.Int("restarts", len(recent)), zap.Duration("within", s.o.within))
		sys.EventStream.Publish(&ClientGaveUp{Supervisor: supPID, Client: child, Reason: reason, Restarts: len(recent), Within: s.o.within})
		sup.StopChildren(child)
		return
	}
	recent = append(recent, now)
	s.restarts[child.Id] = recent
	if s.o.intensity > 0 && supPID != nil {
		all := prune(s.all[supPID.Id], now, s.o.intensityWithin)
		if len(all) >= s.o.intensity {
			s.all[supPID.Id] = nil
			s.mu.Unlock()
			err := &IntensityError{Restarts: s.o.intensity, Within: s.o.intensityWithin, Last: reason}
			log.Error("supervisor intensity exceeded; stopping every client and escalating", zap.Error(err))
			sys.EventStream.Publish(&SupervisorGaveUp{Supervisor: supPID, Restarts: len(all), Within: s.o.intensityWithin, Reason: reason})
			sup.StopChildren(sup.Children()...)
			sup.EscalateFailure(err, message)
			return
		}
		s.all[supPID.Id] = append(all, now)
	}
	s.mu.Unlock()
	log.Info("restarting client", zap.Int("restarts", len(recent)), zap.Duration("within", s.o.within))
	sys.EventStream.Publish(&ClientRestarted{Supervisor: supPID, Client: child, Reason: reason, Restarts: len(recent), Within: s.o.within})
	sup.RestartChildren(child)
}

// forget drops what the strategy kept about a client that terminated and
// returns why the strategy stopped it, if it did.
func (s *strategy) forget(child *actor.PID) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reasons[child.Id]
	delete(s.reasons, child.Id)
	delete(s.restarts, child.Id)
	return r
}

// prune keeps the times inside the window ending now.
func prune(times []time.Time, now time.Time, within time.Duration) []time.Time {
	i := 0
	for i < len(times) && now.Sub(times[i]) >= within {
		i++
	}
	return times[i:]
}

func supervisorPID(sup actor.Supervisor) *actor.PID {
	if c, ok := sup.(interface{ Self() *actor.PID }); ok {
		return c.Self()
	}
	return nil
}
