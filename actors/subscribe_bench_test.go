package actors_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// BenchmarkSubscribeMany subscribes n channels at once and reports the time
// per channel: it must stay flat as n grows (it was quadratic: 2,000
// channels in 30 ms, 32,000 in 3 s, before the review of issue 13).
func BenchmarkSubscribeMany(b *testing.B) {
	for _, n := range []int{1000, 8000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srv := wstest.NewServer(wstest.WithDeribit())
			defer srv.Close()
			chs := make([]string, n)
			for i := range chs {
				chs[i] = fmt.Sprintf("bulk.%06d", i)
			}
			for range b.N {
				b.StopTimer()
				c, err := actors.Connect(testutil.Context(b, 10*time.Second), testutil.NewSystem(b), srv.URL(), actors.WithRequestTimeout(time.Minute))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := c.Subscribe(testutil.Context(b, time.Minute), chs...); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = c.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/channel")
		})
	}
}
