package supervision_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

// BenchmarkSupervised1000 starts 1,000 supervised clients (64 at a time)
// against an echo server in another process and reports the time until all
// are connected (and its ratio to 1,000 bare coder/websocket dials made the
// same way in the same run), goroutines and bytes per client, the time
// Stop takes, and the goroutines left after Stop (goal: 0).
func BenchmarkSupervised1000(b *testing.B) {
	const n, workers = 1000, 64
	testutil.RaiseFileLimit(b, 4*n)
	url, stopServer := testutil.ServerProcess(b)
	defer stopServer()
	for i := 0; i < b.N; i++ {
		// Baseline: bare dials, each with a reader goroutine.
		g0, _ := testutil.Settle()
		start := time.Now()
		bare := make([]*websocket.Conn, n)
		parallel(n, workers, func(j int) {
			c, _, err := websocket.Dial(context.Background(), url, nil)
			if err != nil {
				b.Error(err)
				return
			}
			bare[j] = c
			go func() {
				for {
					if _, _, err := c.Read(context.Background()); err != nil {
						return
					}
				}
			}()
		})
		bareTime := time.Since(start)
		for _, c := range bare {
			if c != nil {
				_ = c.CloseNow()
			}
		}

		sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
		sup, err := supervision.Start(sys)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		g1, m1 := testutil.Settle()
		start = time.Now()
		parallel(n, workers, func(int) {
			if _, err := sup.StartClient(context.Background(), url, actors.WithHandler(func(actors.Inbound) {})); err != nil {
				b.Error(err)
			}
		})
		connectTime := time.Since(start)
		if got := len(sup.ListClients()); got != n {
			b.Fatalf("%d clients listed, want %d", got, n)
		}
		time.Sleep(200 * time.Millisecond)
		g2, m2 := testutil.Settle()

		start = time.Now()
		if err := sup.Stop(); err != nil {
			b.Fatal(err)
		}
		stopTime := time.Since(start)
		sys.Shutdown()
		time.Sleep(1500 * time.Millisecond) // Proto.Actor's dead-letter throttle sleeps 1 s
		g3, _ := testutil.Settle()

		b.ReportMetric(float64(connectTime.Milliseconds()), "ms-to-all-connected")
		b.ReportMetric(float64(bareTime.Milliseconds()), "bare-ms-to-all-connected")
		b.ReportMetric(connectTime.Seconds()/bareTime.Seconds(), "connect/bare")
		b.ReportMetric(float64(g2-g1)/n, "goroutines/client")
		b.ReportMetric(float64(m2-m1)/n, "bytes/client")
		b.ReportMetric(float64(stopTime.Milliseconds()), "ms-to-stop")
		b.ReportMetric(float64(g3-g0), "goroutines-left")
	}
	b.ReportMetric(0, "ns/op")
}

// parallel runs fn(0..n-1) on at most workers goroutines.
func parallel(n, workers int, fn func(int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				fn(j)
			}
		}()
	}
	for j := 0; j < n; j++ {
		next <- j
	}
	close(next)
	wg.Wait()
}
