package actors_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
)

// leanRPCServer answers every request with {"jsonrpc":"2.0","id":ID,"result":true}.
func leanRPCServer() (string, func()) {
	return leanServer(func(data []byte) []byte {
		env, _ := jsonrpc.Peek(data)
		return append(append([]byte(`{"jsonrpc":"2.0","id":`), env.ID...), `,"result":true}`...)
	})
}

// bareRPC is what a user would write on coder/websocket alone: a reader
// goroutine that matches responses to waiting callers by id.
type bareRPC struct {
	conn    *websocket.Conn
	mu      sync.Mutex
	waiting map[uint64]chan []byte
	ids     atomic.Uint64
}

func newBareRPC(url string) *bareRPC {
	conn, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		panic(err)
	}
	b := &bareRPC{conn: conn, waiting: map[uint64]chan []byte{}}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			env, _ := jsonrpc.Peek(data)
			id, _ := jsonrpc.Uint(env.ID)
			b.mu.Lock()
			ch := b.waiting[id]
			delete(b.waiting, id)
			b.mu.Unlock()
			if ch != nil {
				ch <- data
			}
		}
	}()
	return b
}

func (b *bareRPC) call(method string) {
	id := b.ids.Add(1)
	msg, _ := jsonrpc.Build(id, method, nil)
	ch := make(chan []byte, 1)
	b.mu.Lock()
	b.waiting[id] = ch
	b.mu.Unlock()
	if err := b.conn.Write(context.Background(), websocket.MessageText, msg); err != nil {
		panic(err)
	}
	<-ch
}

// BenchmarkCallRoundTrip measures Client.Call against a bare
// coder/websocket connection doing the same write-then-read with its own id
// matching, against the same lean JSON-RPC server, in alternating rounds:
// sequential round-trip p50/p99 and their ratios (goal: p50 within 1.5x),
// the throughput of 64 concurrent callers (goal: >= 0.7x), and
// allocations per call on each side (testing.AllocsPerRun, process-wide, so
// they include the reader goroutines' share).
func BenchmarkCallRoundTrip(b *testing.B) {
	url, stop := leanRPCServer()
	defer stop()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	bare := newBareRPC(url)
	defer bare.conn.CloseNow()
	c, err := actors.Connect(context.Background(), sys, url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	zen := func() {
		if _, err := c.Call(ctx, "public/test", nil); err != nil {
			b.Fatal(err)
		}
	}
	plain := func() { bare.call("public/test") }

	const rounds = 6
	per := b.N/rounds + 1
	var lz, lb []time.Duration
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		lb = append(lb, timeEach(per, plain)...)
		lz = append(lz, timeEach(per, zen)...)
	}
	b.StopTimer()
	zp50, zp99 := pct(lz)
	bp50, bp99 := pct(lb)
	b.ReportMetric(float64(zp50.Microseconds()), "client-p50-us")
	b.ReportMetric(float64(zp99.Microseconds()), "client-p99-us")
	b.ReportMetric(float64(bp50.Microseconds()), "bare-p50-us")
	b.ReportMetric(float64(bp99.Microseconds()), "bare-p99-us")
	b.ReportMetric(float64(zp50)/float64(bp50), "p50-client/bare")
	b.ReportMetric(float64(zp99)/float64(bp99), "p99-client/bare")

	const callers, each = 64, 200
	var tz, tb time.Duration
	for r := 0; r < 3; r++ {
		tb += concurrently(callers, each, plain)
		tz += concurrently(callers, each, zen)
	}
	b.ReportMetric(float64(3*callers*each)/tz.Seconds(), "client-64-calls/s")
	b.ReportMetric(float64(3*callers*each)/tb.Seconds(), "bare-64-calls/s")
	b.ReportMetric(tb.Seconds()/tz.Seconds(), "64-client/bare")
	b.ReportMetric(testing.AllocsPerRun(2000, zen), "client-allocs/call")
	b.ReportMetric(testing.AllocsPerRun(2000, plain), "bare-allocs/call")
	b.ReportMetric(0, "ns/op")
}

func timeEach(n int, fn func()) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		fn()
		out[i] = time.Since(start)
	}
	return out
}

func pct(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100]
}

func concurrently(callers, each int, fn func()) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				fn()
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}
