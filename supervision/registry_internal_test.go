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
