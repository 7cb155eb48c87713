package actors_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// window bounds the messages in flight in the echo benchmarks, for the
// client and the bare connection alike, so neither overruns a queue.
const window = 256

// echoRun is one echo workload: n messages of size bytes, sent as fast as
// the window allows and counted back in.
type echoRun func(b *testing.B, n int, payload []byte) time.Duration

// bareEcho: a coder/websocket connection with one reader goroutine.
func bareEcho(url string) (echoRun, func()) {
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		panic(err)
	}
	conn.SetReadLimit(1 << 20)
	credits := make(chan struct{}, window)
	received := make(chan struct{}, 1)
	var want, got int
	go func() {
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
			<-credits
			got++
			if got == want {
				received <- struct{}{}
			}
		}
	}()
	run := func(b *testing.B, n int, payload []byte) time.Duration {
		want, got = n, 0
		start := time.Now()
		for i := 0; i < n; i++ {
			credits <- struct{}{}
			if err := conn.Write(ctx, websocket.MessageText, payload); err != nil {
				b.Fatal(err)
			}
		}
		<-received
		return time.Since(start)
	}
	return run, func() { conn.CloseNow() }
}

// clientEcho: the zenws client, echoes delivered to a handler.
func clientEcho(sys *actor.ActorSystem, url string) (echoRun, func()) {
	credits := make(chan struct{}, window)
	received := make(chan struct{}, 1)
	var want, got int
	c, err := actors.Connect(context.Background(), sys, url, actors.WithHandler(func(actors.Inbound) {
		<-credits
		got++
		if got == want {
			received <- struct{}{}
		}
	}))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	run := func(b *testing.B, n int, payload []byte) time.Duration {
		want, got = n, 0
		start := time.Now()
		for i := 0; i < n; i++ {
			credits <- struct{}{}
			if err := c.Send(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
		<-received
		return time.Since(start)
	}
	return run, func() { _ = c.Close() }
}

// BenchmarkEchoThroughput measures messages/s of send + echo + delivery at
// 64 B, for a bare coder/websocket connection and for the zenws client,
// against the same in-process echo server, in alternating rounds (A B A B)
// so both see the same machine. It reports each side's rate and the
// client's ratio to bare (goal >= 0.8).
func BenchmarkEchoThroughput(b *testing.B) {
	for _, size := range []int{64, 512, 8192} {
		b.Run(byteSize(size), func(b *testing.B) {
			url, stop := leanEchoServer()
			defer stop()
			sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
			defer sys.Shutdown()
			bare, closeBare := bareEcho(url)
			defer closeBare()
			client, closeClient := clientEcho(sys, url)
			defer closeClient()
			payload := []byte(strings.Repeat("x", size))
			bare(b, 2000, payload) // warm up both
			client(b, 2000, payload)

			const rounds = 6
			per := b.N/rounds + 1
			var tBare, tClient time.Duration
			b.ResetTimer()
			for r := 0; r < rounds; r++ {
				tBare += bare(b, per, payload)
				tClient += client(b, per, payload)
			}
			b.StopTimer()
			n := float64(per * rounds)
			bareRate, clientRate := n/tBare.Seconds(), n/tClient.Seconds()
			b.ReportMetric(bareRate, "bare-msgs/s")
			b.ReportMetric(clientRate, "client-msgs/s")
			b.ReportMetric(clientRate/bareRate, "client/bare")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// leanServer is the least a server can do per message (read, reply), so
// that the client side, not the server, bounds the rate. wstest's server
// records every message, which would dominate here. reply maps a received
// message to the one sent back.
func leanServer(reply func(data []byte) []byte) (string, func()) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		conn.SetReadLimit(1 << 20)
		ctx := context.Background()
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			if err := conn.Write(ctx, typ, reply(data)); err != nil {
				return
			}
		}
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.Close
}

// leanEchoServer echoes every message.
func leanEchoServer() (string, func()) { return leanServer(func(b []byte) []byte { return b }) }

func byteSize(n int) string {
	if n >= 1024 {
		return strings.TrimSuffix(strings.TrimSuffix(time.Duration(n/1024).String(), "ns"), "s") + "KiB"
	}
	return strings.TrimSuffix(time.Duration(n).String(), "ns") + "B"
}

// BenchmarkIdleFootprint connects 1,000 clients to an echo server running
// in another process and reports, per idle connected client, the
// goroutines and the bytes (heap in use + goroutine stacks) it adds on the
// client side, beside the same figures for bare coder/websocket
// connections with one reader goroutine each (goal: <= 3 goroutines and
// <= 64 KiB per client). The objbytes metrics count the live heap objects
// alone (runtime/metrics /memory/classes/heap/objects:bytes after GC): the
// heap in use adds the free room of partly used spans, which varies from
// run to run by a few hundred bytes per connection, so a change of a
// struct's size class shows in objbytes first.
func BenchmarkIdleFootprint(b *testing.B) {
	const n = 1000
	testutil.RaiseFileLimit(b, 4*n)
	url, stop := testutil.ServerProcess(b)
	defer stop()
	for i := 0; i < b.N; i++ {
		g, bytes, objs := footprint(n, func() func() {
			sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
			clients := make([]*actors.Client, 0, n)
			for j := 0; j < n; j++ {
				c, err := actors.Connect(context.Background(), sys, url, actors.WithHandler(func(actors.Inbound) {}))
				if err != nil {
					b.Fatal(err)
				}
				clients = append(clients, c)
			}
			return func() {
				for _, c := range clients {
					_ = c.Close()
				}
				sys.Shutdown()
			}
		})
		b.ReportMetric(g, "client-goroutines/conn")
		b.ReportMetric(bytes, "client-bytes/conn")
		b.ReportMetric(objs, "client-objbytes/conn")
		g, bytes, objs = footprint(n, func() func() {
			conns := make([]*websocket.Conn, 0, n)
			for j := 0; j < n; j++ {
				conn, _, err := websocket.Dial(context.Background(), url, nil)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for {
						if _, _, err := conn.Read(context.Background()); err != nil {
							return
						}
					}
				}()
				conns = append(conns, conn)
			}
			return func() {
				for _, c := range conns {
					_ = c.CloseNow()
				}
			}
		})
		b.ReportMetric(g, "bare-goroutines/conn")
		b.ReportMetric(bytes, "bare-bytes/conn")
		b.ReportMetric(objs, "bare-objbytes/conn")
	}
	b.ReportMetric(0, "ns/op")
}

// footprint measures goroutines, heap+stack bytes and live heap object
// bytes added by open() per connection, then closes.
func footprint(n int, open func() func()) (goroutines, bytes, objects float64) {
	g0, m0 := testutil.Settle()
	o0 := heapObjectBytes()
	closeAll := open()
	time.Sleep(200 * time.Millisecond) // let handshakes' transient goroutines end
	g1, m1 := testutil.Settle()
	o1 := heapObjectBytes()
	closeAll()
	return float64(g1-g0) / float64(n), float64(m1-m0) / float64(n), (float64(o1) - float64(o0)) / float64(n)
}

// heapObjectBytes is the bytes of the heap objects live at the last GC
// (and of those allocated since: read it right after one).
func heapObjectBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
