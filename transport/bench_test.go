package transport_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

// blaster is a server that, after the handshake, writes size-byte binary
// messages as fast as the socket takes them, so that the client's read
// path bounds the rate.
func blaster(b *testing.B, size int) *hostile.Server {
	frame := hostile.Frame(true, hostile.OpBinary, false, make([]byte, size))
	batch := []byte(strings.Repeat(string(frame), max(1, 64<<10/len(frame))))
	return hostile.NewServer(b, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		for c.WriteRaw(batch) == nil {
		}
	})
}

// dialBoth opens a transport.Conn and a bare coder/websocket connection to
// url, closed when b ends: the two sides of a benchmark's alternating rounds.
func dialBoth(b *testing.B, url string) (*transport.Conn, *websocket.Conn) {
	b.Helper()
	ctx := context.Background()
	tc, err := transport.Dial(ctx, url, transport.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tc.CloseNow() })
	bare, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bare.CloseNow() })
	return tc, bare
}

// BenchmarkReadPath measures messages/s read through transport.Conn (with
// its frame inspector) and through a bare coder/websocket connection, from
// the same server, in alternating rounds (A B A B) so both see the same
// machine, and reports the ratio transport/bare.
func BenchmarkReadPath(b *testing.B) {
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			srv := blaster(b, size)
			ctx := context.Background()
			tc, bare := dialBoth(b, srv.URL())
			bare.SetReadLimit(transport.DefaultReadLimit)
			readT := func(n int) time.Duration {
				start := time.Now()
				for range n {
					if _, _, err := tc.Read(); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}
			readB := func(n int) time.Duration {
				start := time.Now()
				for range n {
					if _, _, err := bare.Read(ctx); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}
			readT(1000)
			readB(1000)
			const rounds = 6
			per := b.N/rounds + 1
			var tT, tB time.Duration
			b.ResetTimer()
			for range rounds {
				tT += readT(per)
				tB += readB(per)
			}
			b.StopTimer()
			n := float64(per * rounds)
			b.ReportMetric(n/tB.Seconds(), "bare-msgs/s")
			b.ReportMetric(n/tT.Seconds(), "transport-msgs/s")
			b.ReportMetric(tB.Seconds()/tT.Seconds(), "transport/bare")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkConcurrentWrites measures 64 goroutines writing 64-byte
// messages on one connection to a server that reads and discards, through
// transport.Conn (which combines the writes that queue behind one in
// flight under one flush) and through a bare coder/websocket connection,
// in alternating rounds, and reports both rates, their ratio, and the
// writes to the network per message of transport.Conn (bare makes one per
// message).
func BenchmarkConcurrentWrites(b *testing.B) {
	for _, size := range []int{64, 512, 8 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			srv := hostile.NewServer(b, func(c *hostile.Conn) {
				if c.Handshake() == nil {
					c.Hold()
				}
			})
			ctx := context.Background()
			tc, bare := dialBoth(b, srv.URL())
			msg := make([]byte, size)
			const writers = 64
			run := func(n int, write func() error) time.Duration {
				var wg sync.WaitGroup
				start := time.Now()
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range n / writers {
							if err := write(); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				return time.Since(start)
			}
			writeT := func() error { return tc.Write(ctx, websocket.MessageBinary, msg) }
			writeB := func() error { return bare.Write(ctx, websocket.MessageBinary, msg) }
			const rounds = 6
			per := max(writers, b.N/rounds)
			var tT, tB time.Duration
			w0 := transport.NetWrites(tc)
			b.ResetTimer()
			for range rounds {
				tT += run(per, writeT)
				tB += run(per, writeB)
			}
			b.StopTimer()
			n := float64(per / writers * writers * rounds)
			b.ReportMetric(n/tT.Seconds(), "transport-msgs/s")
			b.ReportMetric(n/tB.Seconds(), "bare-msgs/s")
			b.ReportMetric(tB.Seconds()/tT.Seconds(), "transport/bare")
			b.ReportMetric(float64(transport.NetWrites(tc)-w0)/n, "net-writes/msg")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkConcurrentRoundTrips is the 64-caller workload at the
// transport level: 64 goroutines each write a message and wait for its
// echo (matched by content on one reader goroutine), through
// transport.Conn and through bare coder/websocket, in alternating rounds
// against the same echo server; it reports both rates, their ratio and
// transport.Conn's network writes per message. Writes combine only when
// callers overlap: answers that arrive in one read wake several callers
// at once.
func BenchmarkConcurrentRoundTrips(b *testing.B) {
	srv := wstest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	tc, bare := dialBoth(b, srv.URL())
	const callers = 64
	type side struct {
		write func([]byte) error
		wait  [callers]chan struct{}
	}
	mk := func(write func([]byte) error, read func() ([]byte, error)) *side {
		s := &side{write: write}
		for i := range s.wait {
			s.wait[i] = make(chan struct{}, 1)
		}
		go func() {
			for {
				data, err := read()
				if err != nil {
					return
				}
				s.wait[data[0]] <- struct{}{}
			}
		}()
		return s
	}
	sT := mk(func(p []byte) error { return tc.Write(ctx, websocket.MessageBinary, p) },
		func() ([]byte, error) { _, d, err := tc.Read(); return d, err })
	sB := mk(func(p []byte) error { return bare.Write(ctx, websocket.MessageBinary, p) },
		func() ([]byte, error) { _, d, err := bare.Read(ctx); return d, err })
	run := func(s *side, each int) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for g := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := make([]byte, 64)
				msg[0] = byte(g)
				for range each {
					if err := s.write(msg); err != nil {
						b.Error(err)
						return
					}
					<-s.wait[g]
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	const rounds = 6
	each := max(1, b.N/rounds/callers)
	var tT, tB time.Duration
	w0 := transport.NetWrites(tc)
	b.ResetTimer()
	for range rounds {
		tT += run(sT, each)
		tB += run(sB, each)
	}
	b.StopTimer()
	n := float64(each * callers * rounds)
	b.ReportMetric(n/tT.Seconds(), "transport-calls/s")
	b.ReportMetric(n/tB.Seconds(), "bare-calls/s")
	b.ReportMetric(tB.Seconds()/tT.Seconds(), "transport/bare")
	b.ReportMetric(float64(transport.NetWrites(tc)-w0)/n, "net-writes/msg")
	b.ReportMetric(0, "ns/op")
}
