package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// maxInWindow returns the most instants of ts (sorted) in any interval
// (t-w, t], and also counting closed intervals [t-w, t] when closed.
func maxInWindow(ts []time.Time, w time.Duration, closed bool) int {
	best := 0
	for j := range ts {
		n := 0
		for i := j; i >= 0; i-- {
			d := ts[j].Sub(ts[i])
			if d > w || (!closed && d == w) {
				break
			}
			n++
		}
		best = max(best, n)
	}
	return best
}

// Binance counts 5 messages in any rolling second. The old preset (a
// token bucket of rate 5 and burst 5) let the 6th out 200 ms after the
// 5th: 6 in 200 ms, and 1008 from the venue.
func TestBinanceAtMostFiveInAnySecond(t *testing.T) {
	l := Binance()
	now := time.Unix(1_700_000_000, 0)
	var through []time.Time
	for i := 0; i < 2000; i++ {
		now = now.Add(time.Duration(rand.N(40)) * time.Millisecond)
		if l.allowAt(now, req("SUBSCRIBE")) {
			through = append(through, now)
		}
	}
	if n := maxInWindow(through, time.Second, true); n > BinanceMessagesPerSecond {
		t.Fatalf("%d messages inside one second (closed interval), Binance allows %d", n, BinanceMessagesPerSecond)
	}
	if len(through) < 2000*20/1000*BinanceMessagesPerSecond/2 { // ~40 s of offers: ≥ 100 must pass
		t.Fatalf("only %d let through in ~40 s", len(through))
	}
}

// The same through Wait in real time: 12 SUBSCRIBEs in a row go out as 5,
// 5 and 2, never 6 inside one second.
func TestBinanceWaitAtMostFiveInAnySecond(t *testing.T) {
	l := Binance()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sent []time.Time
	for i := 0; i < 12; i++ {
		if err := l.Wait(ctx, req("SUBSCRIBE")); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, time.Now())
	}
	if n := maxInWindow(sent, time.Second, true); n > BinanceMessagesPerSecond {
		t.Fatalf("%d SUBSCRIBEs inside one second: %v", n, sent)
	}
	if st := l.Stats(); st.Allowed < 5 || st.Waited < 2 || st.Allowed+st.Waited != 12 {
		t.Fatalf("stats %+v: want the first 5 at once and the 6th and the 11th waiting", st)
	}
	if d := sent[11].Sub(sent[0]); d < 2*time.Second {
		t.Fatalf("12 messages went out in %v: 5 a second needs 2 s at least", d)
	}
}

// Whatever the pattern of Allow, Wait (reserve then confirm at the
// reserved instant, or cancel) and cost, no window holds more than its
// capacity of tokens taken.
func TestWindowNeverExceedsItsCapacity(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*13))
		size := time.Duration(1+r.IntN(1000)) * time.Millisecond
		capacity := 1 + r.IntN(20)
		w := newWindow(size, capacity)
		now := w.base.Add(time.Hour)
		type sent struct {
			at   time.Time
			n    int
			kind string
		}
		var out []sent
		for i := 0; i < 300; i++ {
			if r.IntN(3) == 0 {
				now = now.Add(time.Duration(r.Float64() * 2 * float64(size) / float64(capacity)))
			}
			n := 1 + r.IntN(capacity)
			if r.IntN(3) > 0 {
				n = 1
			}
			switch r.IntN(3) {
			case 0:
				if w.allow(now, n) {
					out = append(out, sent{now, n, "allow"})
				}
			default: // a few waiters reserve, then some are cancelled, the rest go at their instant
				type waiter struct {
					at    time.Time
					id    uint64
					n     int
					moves int
				}
				var ws []waiter
				for k := 0; k < 1+r.IntN(3); k++ {
					d, id := w.reserve(now, n)
					if d == 0 {
						out = append(out, sent{now, n, fmt.Sprint("reserve0 ", k)})
						continue
					}
					ws = append(ws, waiter{at: now.Add(d), id: id, n: n})
				}
				// Wake the waiters in the order of their timers, as real time
				// would; a timer fires late, never early.
				for len(ws) > 0 {
					k := 0
					for i := range ws {
						if ws[i].at.Before(ws[k].at) {
							k = i
						}
					}
					x := ws[k]
					ws = append(ws[:k], ws[k+1:]...)
					// The simulated clock never goes back: every call is at or
					// after the one before.
					at := x.at.Add(time.Duration(r.IntN(3)) * time.Millisecond)
					if at.Before(now) {
						at = now
					}
					now = at
					if r.IntN(4) == 0 {
						w.cancel(x.id)
						continue
					}
					more := w.confirm(at, x.id, x.n)
					if more != 0 {
						if x.moves++; x.moves > 10 {
							t.Fatalf("seed %d: a waiter moved %d times", seed, x.moves)
						}
						x.at = at.Add(more)
						ws = append(ws, x)
						continue
					}
					out = append(out, sent{at, x.n, fmt.Sprint("waiter ", x.at.Sub(w.base))})
				}
			}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
		for j := range out {
			tok := 0
			for i := j; i >= 0 && out[j].at.Sub(out[i].at) < size; i-- {
				tok += out[i].n
			}
			if tok > capacity {
				for i := j; i >= 0 && out[j].at.Sub(out[i].at) < size; i-- {
					t.Logf("%v n=%d %s", out[i].at.Sub(w.base), out[i].n, out[i].kind)
				}
				t.Fatalf("seed %d (window %v, capacity %d): %d tokens in one window ending at %v", seed, size, capacity, tok, out[j].at.Sub(w.base))
			}
		}
		if len(out) == 0 {
			t.Fatalf("seed %d: nothing let through", seed)
		}
	}
}

// A charge (a pong, never delayed) that lands before a waiter's instant
// and fills its window moves the waiter on when it wakes, instead of
// letting capacity+1 through.
func TestWindowChargeMovesAWaiter(t *testing.T) {
	w := newWindow(time.Second, 5)
	t0 := w.base.Add(time.Hour)
	for i := 0; i < 5; i++ {
		if !w.allow(t0, 1) {
			t.Fatalf("message %d refused", i+1)
		}
	}
	var ids []uint64
	for i := 0; i < 5; i++ {
		d, id := w.reserve(t0, 1)
		if d != time.Second {
			t.Fatalf("waiter %d reserved %v ahead, want 1s", i+1, d)
		}
		ids = append(ids, id)
	}
	if w.charge(t0.Add(500*time.Millisecond), 1) {
		t.Fatal("a charge within the debt bound was forgiven")
	}
	at := t0.Add(time.Second)
	if more := w.confirm(at, ids[0], 1); more != 500*time.Millisecond {
		t.Fatalf("the first waiter may go %v later, want 500ms (after the charge leaves its window)", more)
	}
	for _, id := range ids[1:] {
		if more := w.confirm(at, id, 1); more != 0 {
			t.Fatalf("waiter %d moved by %v", id, more)
		}
	}
	if tok := w.tokens(at); tok != -1 {
		t.Fatalf("tokens %v, want -1 (4 at 1s, the moved one at 1.5s, the charge at 0.5s)", tok)
	}
}

// A flood of charges takes at most two capacities into one window; a Wait
// after it goes within about a window.
func TestWindowChargeDebtIsBounded(t *testing.T) {
	l := must(New("w", nil, Bucket{Name: "m", Burst: 5, Window: 100 * time.Millisecond}))
	for i := 0; i < 10_000; i++ {
		_ = l.Charge(Frame{Data: []byte("pong")})
	}
	if tok := l.Tokens(0); tok < -5 {
		t.Fatalf("tokens %v after a flood: the debt is not bounded", tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.WaitFor(ctx, Frame{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Charged != 10_000 || st.Forgiven < 9_000 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewRejectsBadWindows(t *testing.T) {
	for _, b := range []Bucket{
		{Burst: 5, Window: -time.Second},
		{Burst: 0, Window: time.Second},
		{Rate: 5, Burst: 5, Window: time.Second}, // rate and window: which rule?
	} {
		if _, err := New("bad", nil, b); err == nil {
			t.Fatalf("New accepted %+v", b)
		}
	}
	l := must(New("ok", nil, Bucket{Name: "m", Burst: 10, Window: 2 * time.Second}))
	if b := l.Buckets()[0]; b.Rate != 5 {
		t.Fatalf("Buckets()[0].Rate = %v, want the sustained 5/s", b.Rate)
	}
}

// The hot path: one Allow on a token bucket and on a window that never run
// out. Compare the two as a ratio.
func BenchmarkAllow(b *testing.B) {
	for _, c := range []struct {
		name string
		b    Bucket
	}{
		{"token", Bucket{Name: "t", Rate: 1e12, Burst: 1 << 30}},
		{"window", Bucket{Name: "w", Burst: 1 << 30, Window: time.Millisecond}},
	} {
		b.Run(c.name, func(b *testing.B) {
			l := must(New(c.name, nil, c.b))
			f := Frame{Data: []byte("x")}
			for b.Loop() {
				if !l.Allow(f) {
					b.Fatal("refused")
				}
			}
		})
	}
}

// A waiter whose timer fires a whole window late may find its reservation
// expired by another caller: it reserves afresh instead of going uncounted.
func TestWindowLateWaiterReservesAfresh(t *testing.T) {
	w := newWindow(time.Second, 1)
	t0 := w.base.Add(time.Hour)
	if !w.allow(t0, 1) {
		t.Fatal("first refused")
	}
	d, id := w.reserve(t0, 1)
	if d != time.Second {
		t.Fatalf("reserved %v ahead", d)
	}
	if !w.allow(t0.Add(2500*time.Millisecond), 1) { // expires the reservation at t0+1s
		t.Fatal("a frame 1.5 s after the reserved instant refused")
	}
	if more := w.confirm(t0.Add(2600*time.Millisecond), id, 1); more != 900*time.Millisecond {
		t.Fatalf("the late waiter may go %v later, want 900ms (a window after the frame at 2.5 s)", more)
	}
}
