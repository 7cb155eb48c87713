package supervision

import (
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// The supervisor's shared state is reached through the producer closure
// and, for NewSupervisor and restarts, a per-actor-system registry: no
// package-global map.
func TestNoPackageGlobalRegistry(t *testing.T) { testutil.NoPackageRegistry(t, ".") }

// BenchmarkRetire retires 1,000 and then 10,000 stopped clients whose
// goroutines have not ended (the worst case: a mass stop whose connections
// are still closing) and reports the cost per retired client at each size
// and its ratio (with a sweep on every retire it grew with n, about 10).
func BenchmarkRetire(b *testing.B) {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	perClient := func(n int) float64 {
		clients := make([]*actors.Client, n)
		for i := range clients {
			clients[i] = actors.NewClient(sys, sys.NewLocalPID(fmt.Sprintf("retire-%d", i))) // not a client: never done
		}
		sh := newShared(sys, sys.NewLocalPID("sup"), options{}, nil)
		start := time.Now()
		for _, c := range clients {
			sh.retireLocked(c)
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n)
	}
	for i := 0; i < b.N; i++ {
		small, large := perClient(1000), perClient(10000)
		b.ReportMetric(small, "ns/client-1k")
		b.ReportMetric(large, "ns/client-10k")
		b.ReportMetric(large/small, "10k/1k")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFailures has 1,000 and then 10,000 clients each fail once to
// the strategy (a venue gone: every client gives up at about the same
// time) and reports the strategy's cost per failure at each size and its
// ratio (with a sweep of the restart table on every failure it grew with
// n).
func BenchmarkFailures(b *testing.B) {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	perFailure := func(n int) float64 {
		children := make([]*actor.PID, n)
		for i := range children {
			children[i] = sys.NewLocalPID(fmt.Sprintf("failing-%d", i))
		}
		o := newOptions([]Option{WithRestartBudget(5, time.Minute)})
		s := newStrategy(o, false)
		start := time.Now()
		for _, c := range children {
			s.HandleFailure(sys, nopSupervisor{}, c, nil, "venue gone", nil)
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n)
	}
	for i := 0; i < b.N; i++ {
		small, large := perFailure(1000), perFailure(10000)
		b.ReportMetric(small, "ns/failure-1k")
		b.ReportMetric(large, "ns/failure-10k")
		b.ReportMetric(large/small, "10k/1k")
	}
	b.ReportMetric(0, "ns/op")
}

// nopSupervisor is the parent a strategy acts on in BenchmarkFailures.
type nopSupervisor struct{}

func (nopSupervisor) Children() []*actor.PID        { return nil }
func (nopSupervisor) EscalateFailure(any, any)      {}
func (nopSupervisor) RestartChildren(...*actor.PID) {}
func (nopSupervisor) StopChildren(...*actor.PID)    {}
func (nopSupervisor) ResumeChildren(...*actor.PID)  {}
