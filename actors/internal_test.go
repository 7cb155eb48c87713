package actors

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"
)

func TestBackoffFullJitterBounds(t *testing.T) {
	base, max := 100*time.Millisecond, 3*time.Second
	wantCaps := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3 * time.Second, 3 * time.Second}
	for k, want := range wantCaps {
		if got := backoffCap(k, base, max); got != want {
			t.Errorf("backoffCap(%d) = %v, want %v", k, got, want)
		}
	}
	// Property: every delay lies in [0, cap], the cap never shrinks as k
	// grows, and huge k does not overflow.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		b := time.Duration(r.Int64N(int64(time.Second))) + 1
		m := b + time.Duration(r.Int64N(int64(time.Minute)))
		prev := time.Duration(0)
		for k := 1; k < 70; k++ {
			c := backoffCap(k, b, m)
			if c < prev || c > m || c < 0 {
				t.Fatalf("cap(%d, %v, %v) = %v after %v", k, b, m, c, prev)
			}
			prev = c
			if d := backoff(k, b, m); d < 0 || d > c {
				t.Fatalf("backoff(%d) = %v outside [0, %v]", k, d, c)
			}
		}
	}
	// The largest durations there are: no overflow, no panic (before:
	// rand.Int64N(MaxInt64+1) panicked on the actor and the client stopped
	// with no reason).
	for k := 1; k < 70; k++ {
		if d := backoff(k, math.MaxInt64, math.MaxInt64); d < 0 {
			t.Fatalf("backoff(%d, MaxInt64, MaxInt64) = %v", k, d)
		}
	}
	// Full jitter spreads: over many draws the mean is near cap/2.
	var sum time.Duration
	for i := 0; i < 20000; i++ {
		sum += backoff(3, base, max)
	}
	if mean := sum / 20000; mean < 150*time.Millisecond || mean > 250*time.Millisecond {
		t.Fatalf("mean of backoff(3) = %v, want about 200ms", mean)
	}
}

func TestLatencyRingPercentiles(t *testing.T) {
	r := newLatencyRing(100)
	if p50, p99, n := r.percentiles(); p50 != 0 || p99 != 0 || n != 0 {
		t.Fatal("empty ring has percentiles")
	}
	for i := 1; i <= 250; i++ { // only the last 100 (151..250) count
		r.add(time.Duration(i) * time.Millisecond)
	}
	p50, p99, n := r.percentiles()
	if n != 100 || p50 != 200*time.Millisecond || p99 != 249*time.Millisecond {
		t.Fatalf("p50 %v p99 %v n %d", p50, p99, n)
	}
}

func TestDeliveryQueueDropOldestKeepsNewest(t *testing.T) {
	var mu sync.Mutex
	var got []uint64
	block := make(chan struct{})
	q := newDeliveryQueue(3, DropOldest, func(m *Inbound) {
		<-block
		mu.Lock()
		got = append(got, m.Seq)
		mu.Unlock()
	}, zap.NewNop())
	q.push(&Inbound{}) // taken by the worker, blocks it
	for q.pending() != 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		q.push(&Inbound{})
	}
	close(block)
	q.wg.Wait()
	// Seq 1 was being handled; of 2..11 only the three newest waited.
	if len(got) != 4 || got[0] != 1 || got[1] != 9 || got[2] != 10 || got[3] != 11 || q.dropped.Load() != 7 {
		t.Fatalf("delivered %v, dropped %d", got, q.dropped.Load())
	}
}

// FuzzRoute feeds arbitrary frames through both halves of inbound routing
// (the reader's and the actor's), with a request pending and the Deribit
// heartbeat on: no input may panic, and every frame is either consumed or
// delivered exactly once.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"a":1}}`,
		`{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"m"}}`,
		`{"method":"subscription","params":{"channel":"book.BTC","data":[1,2]}}`,
		`{"method":"heartbeat","params":{"type":"test_request"}}`,
		`{"id":18446744073709551615,"result":null}`, `{"id":-1,"result":1}`, `{"id":1e999,"result":1}`,
		`{"id":1,"error":"x"}`, `plain text`, `{"a":`, `[]`, "\x00\xff",
	} {
		f.Add(byte(1), []byte(s))
	}
	sys := actor.NewActorSystem()
	var delivered atomic.Uint64
	cfg, _ := NewConfig("ws://127.0.0.1:1/", WithHeartbeat(HeartbeatDeribit, time.Minute),
		WithHandler(func(Inbound) { delivered.Add(1) }))
	d := newDurable(sys, actor.NewPID("nonhost", "fuzz"), cfg)
	a := &clientActor{cfg: &d.cfg, d: d, sys: sys, self: d.pid, gen: 1}
	a.phase = phaseLive
	f.Fuzz(func(t *testing.T, typ byte, data []byte) {
		mt := websocket.MessageText
		if typ%2 == 0 {
			mt = websocket.MessageBinary
		}
		if key, ok := parseKey([]byte("1")); ok {
			if _, err := d.pending.register(key, time.Minute); err == nil {
				defer d.pending.failAll(ErrDisconnected)
			}
		}
		before := delivered.Load() + d.in.dropped.Load()
		m, consumed := d.inbound(nil, 1, mt, data)
		if consumed {
			return
		}
		a.route(m)
		d.in.wg.Wait()
		if after := delivered.Load() + d.in.dropped.Load(); after > before+1 {
			t.Fatalf("one frame delivered %d times", after-before)
		}
	})
}
