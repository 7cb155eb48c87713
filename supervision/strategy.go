package supervision

import (
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/pidname"
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
	o             options
	recordReasons bool // a ClientSupervisor's: it reads why it stopped a client, and stops one that never connected
	mu            sync.Mutex
	restarts      map[string][]time.Time // per child: restarts inside the window
	all           map[string][]time.Time // per supervisor: restarts inside the intensity window
	reasons       map[string]any         // why a client was stopped, for ClientDisconnected
	sweepAt       int                    // len(restarts) at which sweepLocked next runs
}

// NewStrategy returns the supervisor strategy a ClientSupervisor uses, for
// your own parent actor of zenws clients (pattern 3):
//
//	props := actor.PropsFromProducer(newMyParent, actor.WithSupervisor(supervision.NewStrategy()))
//
// A child that fails (a crash, or a client whose reconnect attempts are
// spent) is restarted with the same PID while its budget
// (WithRestartBudget) allows, and stopped for good after. That holds for a
// client that has never connected too (its venue is down at start): the
// restarted instance carries its backoff on, so the client keeps trying
// while the budget lasts. To start a client during venue maintenance and
// have it try until the venue is up, give it
// actors.WithRetryCount(actors.RetryForever): it never fails to this
// strategy for a recoverable error, spends no budget, and its handle's
// WaitConnected returns once it is connected. (A ClientSupervisor stops a
// client that fails before its first connection instead: StartClient
// returns that error.)
// ClientRestarted, ClientGaveUp and SupervisorGaveUp are published; the
// ClientConnected and ClientDisconnected events come from a ClientSupervisor
// only (use actors.WithStateObserver or the callbacks in your own parent).
// Invalid budget values fall back to the defaults.
func NewStrategy(opts ...Option) actor.SupervisorStrategy {
	o := newOptions(opts)
	o.sanitize()
	return newStrategy(o, false)
}

func newStrategy(o options, recordReasons bool) *strategy {
	return &strategy{o: o, recordReasons: recordReasons, restarts: map[string][]time.Time{}, all: map[string][]time.Time{}, reasons: map[string]any{}}
}

// HandleFailure decides for one failed child.
func (s *strategy) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, message any) {
	supPID := supervisorPID(sup)
	log := s.o.logger.With(pidname.Field("client", child), zap.Any("reason", reason))
	now := time.Now()

	if sh := lookupShared(sys, supPID); sh != nil && sh.stopping.Load() {
		// The supervisor is stopping: a restart now would outlive it.
		s.stop(sup, child, reason)
		return
	}
	if s.recordReasons {
		// A ClientSupervisor's client that never connected: its first
		// connect failed, StartClient returns that error and must leave no
		// child behind. Under your own parent (NewStrategy) there is no
		// StartClient waiting: such a client is restarted like any other,
		// so that one started during venue maintenance keeps trying.
		if c := actors.NewClient(sys, child); c.Done() != nil && c.Health().Generation == 0 {
			log.Info("client failed before its first connection; stopping it")
			s.stop(sup, child, reason)
			return
		}
	}

	s.mu.Lock()
	s.sweepLocked(now)
	recent := prune(s.restarts[child.Id], now, s.o.within)
	if len(recent) >= s.o.maxRestarts {
		s.mu.Unlock()
		log.Warn("restart budget spent; stopping the client for good",
			zap.Int("restarts", len(recent)), zap.Duration("within", s.o.within))
		publish(sys, s.o.logger, &ClientGaveUp{Supervisor: supPID, Client: child, Reason: reason, Restarts: len(recent), Within: s.o.within})
		s.stop(sup, child, reason)
		return
	}
	recent = append(recent, now)
	s.restarts[child.Id] = recent
	if s.o.intensity > 0 && supPID != nil {
		all := prune(s.all[supPID.Id], now, s.o.intensityWithin)
		if len(all) >= s.o.intensity {
			delete(s.all, supPID.Id)
			s.mu.Unlock()
			err := &IntensityError{Restarts: s.o.intensity, Within: s.o.intensityWithin, Last: reason}
			log.Error("supervisor intensity exceeded; stopping every client and escalating", zap.Error(err))
			publish(sys, s.o.logger, &SupervisorGaveUp{Supervisor: supPID, Restarts: len(all), Within: s.o.intensityWithin, Reason: reason})
			s.stop(sup, child, err)
			for _, c := range sup.Children() {
				s.stop(sup, c, err)
			}
			sup.EscalateFailure(err, message)
			return
		}
		s.all[supPID.Id] = append(all, now)
	}
	s.mu.Unlock()
	log.Info("restarting client", zap.Int("restarts", len(recent)), zap.Duration("within", s.o.within))
	publish(sys, s.o.logger, &ClientRestarted{Supervisor: supPID, Client: child, Reason: reason, Restarts: len(recent), Within: s.o.within})
	sup.RestartChildren(child)
}

// stop stops a child for good, remembering why for ClientDisconnected.
func (s *strategy) stop(sup actor.Supervisor, child *actor.PID, reason any) {
	s.mu.Lock()
	delete(s.restarts, child.Id)
	if s.recordReasons {
		if _, seen := s.reasons[child.Id]; !seen {
			s.reasons[child.Id] = reason
		}
	}
	s.mu.Unlock()
	sup.StopChildren(child)
}

// sweepLocked forgets restart times that left the window, so that children
// which came and went leave nothing behind. It runs when the table has
// doubled since its last run, not on every failure: when a venue goes
// away, every client fails at about the same time, and a sweep per
// failure made n failures cost n² on the supervisor's goroutine. (The
// times of one child are pruned when it fails anyway.)
func (s *strategy) sweepLocked(now time.Time) {
	if len(s.restarts) < s.sweepAt {
		return
	}
	for id, times := range s.restarts {
		if len(prune(times, now, s.o.within)) == 0 {
			delete(s.restarts, id)
		}
	}
	s.sweepAt = max(minSweep, 2*len(s.restarts))
}

// minSweep: below it sweepLocked runs on every failure.
const minSweep = 16

// forget drops what the strategy kept about a child that terminated and
// returns why the strategy stopped it, if it did.
func (s *strategy) forget(child *actor.PID) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reasons[child.Id]
	delete(s.reasons, child.Id)
	delete(s.restarts, child.Id)
	return r
}

// publish puts an event on the event stream. Subscribers run right here, on
// the supervisor's or a client's goroutine: a panic in one is logged and
// swallowed so that it cannot take supervision down.
func publish(sys *actor.ActorSystem, log *zap.Logger, evt any) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("an event stream subscriber panicked", zap.Any("panic", r), zap.String("event", fmt.Sprintf("%T", evt))) // the type: zap.Any would print its PIDs in protobuf form
		}
	}()
	sys.EventStream.Publish(evt)
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
