package ratelimit

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The package starts no goroutines; testutil.VerifyTestMain would import
// actors, which imports this package.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func req(method string) Frame {
	return Frame{Data: []byte(`{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{}}`)}
}

// Over any window of length w, a bucket lets through at most
// burst + rate*w tokens, whatever the pattern of requests.
func TestBucketNeverExceedsBurstPlusRate(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*7))
		perSec := 1 + r.Float64()*200
		burst := 1 + r.IntN(50)
		l := must(New("prop", nil, Bucket{Name: "b", Rate: perSec, Burst: burst}))
		now := time.Unix(1_700_000_000, 0)
		var through []time.Time
		for i := 0; i < 400; i++ {
			// Gaps from none to several refill periods, in bursts.
			if r.IntN(4) == 0 {
				now = now.Add(time.Duration(r.Float64() * 3 * float64(time.Second) / perSec))
			}
			if l.allowAt(now, Frame{Data: []byte("x")}) {
				through = append(through, now)
			}
		}
		if len(through) < burst {
			t.Fatalf("seed %d: only %d let through, burst is %d", seed, len(through), burst)
		}
		for i := range through {
			for j := i; j < len(through); j++ {
				w := through[j].Sub(through[i]).Seconds()
				if n := j - i + 1; float64(n) > float64(burst)+perSec*w+1e-9 {
					t.Fatalf("seed %d (rate %.2f, burst %d): %d let through in %.6fs, bound %.3f",
						seed, perSec, burst, n, w, float64(burst)+perSec*w)
				}
			}
		}
	}
}

func TestDeribitPricesCreditsAndMatchingEngine(t *testing.T) {
	l := Deribit(DeribitTier4)
	now := time.Now() // one instant: no refill between the requests
	// 100 non-matching requests fit the 50,000 credit pool, the 101st not.
	for i := 0; i < DeribitCreditCapacity/DeribitCreditCost; i++ {
		if !l.allowAt(now, req("public/get_time")) {
			t.Fatalf("request %d refused within the credit pool", i+1)
		}
	}
	if l.allowAt(now, req("public/ticker")) {
		t.Fatal("request 101 allowed: the pool holds 100 requests")
	}
	// Orders draw on their own bucket: tier 4 allows a burst of 20.
	for i := 0; i < DeribitTier4.Burst; i++ {
		if !l.allowAt(now, req("private/buy")) {
			t.Fatalf("order %d refused within the matching-engine burst", i+1)
		}
	}
	if l.allowAt(now, req("private/cancel")) {
		t.Fatal("order past the matching-engine burst allowed")
	}
	if !l.allowAt(now, Frame{Control: true}) {
		t.Fatal("control frames are free on Deribit")
	}
	st := l.Stats()
	if st.Rejected != 2 || st.Allowed != 121 {
		t.Fatalf("stats %+v, want 121 allowed and 2 rejected", st)
	}
}

func TestBinanceCountsControlFrames(t *testing.T) {
	l := Binance()
	for i := 0; i < 4; i++ {
		l.Charge(Frame{Control: true}) // pongs: counted, never refused
	}
	if !l.Allow(req("SUBSCRIBE")) {
		t.Fatal("fifth message of the second refused")
	}
	if l.Allow(req("SUBSCRIBE")) {
		t.Fatal("sixth message in the same second allowed: pongs must count")
	}
	if got := l.Stats().Charged; got != 4 {
		t.Fatalf("charged %d, want 4", got)
	}
}

func TestChargeOverdrawsAndDelaysLaterFrames(t *testing.T) {
	l := Simple(1000, 2)
	l.Charge(Frame{Data: []byte("a")})
	l.Charge(Frame{Data: []byte("b")})
	l.Charge(Frame{Data: []byte("c")}) // one in debt
	if tok := l.Tokens(0); tok > -0.5 {
		t.Fatalf("tokens %.2f after overdrawing by one, want about -1", tok)
	}
	if l.Allow(Frame{Data: []byte("d")}) {
		t.Fatal("allowed while in debt")
	}
}

func TestWaitHonoursDeadlineAndCancel(t *testing.T) {
	l := Simple(1, 1) // one a second
	ctx := context.Background()
	if err := l.Wait(ctx, Frame{Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	// The next token is ~1 s away: a 50 ms deadline is refused at once,
	// without taking anything.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.Wait(short, Frame{Data: []byte("b")})
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err %v, want ErrRateLimited", err)
	}
	if el := time.Since(start); el > 40*time.Millisecond && short.Err() != nil {
		t.Fatalf("refusal waited for the deadline (%v) instead of returning at once", el)
	}
	// A cancelled wait gives its tokens back and says why.
	cctx, ccancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); ccancel() }()
	if err := l.Wait(cctx, Frame{Data: []byte("c")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if tok := l.Tokens(0); tok < -0.5 {
		t.Fatalf("tokens %.2f after the cancelled wait: its reservation was not given back", tok)
	}
	// A frame that can never fit is refused whatever the deadline.
	big := must(New("big", func(Frame) (int, int) { return 0, 5 }, Bucket{Name: "b", Rate: 1, Burst: 2}))
	if err := big.Wait(ctx, Frame{}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err %v, want ErrRateLimited for cost > burst", err)
	}
}

func TestWaitPacesToTheRate(t *testing.T) {
	l := Simple(200, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 11; i++ {
		if err := l.Wait(ctx, Frame{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	// Late timers shorten the next wait, so only the count is certain.
	if st := l.Stats(); st.Waited < 9 {
		t.Fatalf("stats %+v: 11 frames at 200/s with burst 1 must mostly wait", st)
	}
}

func TestNewRejectsBadBuckets(t *testing.T) {
	for _, b := range []Bucket{{Rate: 0, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: -1, Burst: 3}} {
		if _, err := New("bad", nil, b); err == nil {
			t.Fatalf("New accepted %+v", b)
		}
	}
	if _, err := New("none", nil); err == nil {
		t.Fatal("New accepted no buckets")
	}
	bad := must(New("oob", func(Frame) (int, int) { return 3, 1 }, Bucket{Name: "b", Rate: 1, Burst: 1}))
	if bad.Allow(Frame{}) {
		t.Fatal("a classifier choosing a missing bucket must refuse, not panic")
	}
}

func TestPrefixCost(t *testing.T) {
	c := PrefixCost(map[string]int{"private/": 5, "private/get_": 2, "public/": 1}, 3)
	for m, want := range map[string]int{"private/buy": 5, "private/get_positions": 2, "public/test": 1, "other": 3} {
		if _, n := c(req(m)); n != want {
			t.Errorf("%s costs %d, want %d", m, n, want)
		}
	}
	if _, n := c(Frame{Control: true}); n != 0 {
		t.Errorf("control frame costs %d", n)
	}
}

func TestBinanceConnections(t *testing.T) {
	l := BinanceConnections()
	n := 0
	for l.Allow(Frame{}) {
		n++
		if n > 1000 {
			break
		}
	}
	if n != BinanceConnectionsPer {
		t.Fatalf("%d connection attempts allowed at once, want %d", n, BinanceConnectionsPer)
	}
}

// Charged frames (pongs to a ping flood) put a bucket at most one burst in
// debt: the next frame waits about two bursts' refill, not hours.
func TestChargeDebtIsBoundedByOneBurst(t *testing.T) {
	l := Binance()
	for i := 0; i < 100_000; i++ {
		if err := l.Charge(Frame{Control: true}); err != nil {
			t.Fatal(err)
		}
	}
	if tok := l.Tokens(0); tok < -float64(2*BinanceMessagesPerSecond) {
		t.Fatalf("bucket at %.0f tokens after a flood of charges: the debt is not bounded", tok)
	}
	st := l.Stats()
	if st.Charged != 100_000 || st.Forgiven < 99_000 { // the bucket refills while the loop runs
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.WaitFor(ctx, req("x")); err != nil {
		t.Fatalf("a frame after the flood: %v", err)
	}
}

// A Classifier is user code: a panic in it is a typed error from every way
// of taking tokens, never a crash.
func TestClassifierPanicIsATypedError(t *testing.T) {
	l := must(New("buggy", func(Frame) (int, int) { panic("bug") }, Bucket{Name: "b", Rate: 1, Burst: 1}))
	var pe *ClassifierPanicError
	if _, err := l.WaitFor(context.Background(), req("x")); !errors.As(err, &pe) || !errors.Is(err, ErrClassifierPanicked) || pe.Value != "bug" {
		t.Fatalf("WaitFor: %v", err)
	}
	if err := l.Try(req("x")); !errors.Is(err, ErrClassifierPanicked) || errors.Is(err, ErrRateLimited) {
		t.Fatalf("Try: %v", err)
	}
	if l.Allow(req("x")) {
		t.Fatal("Allow let a frame through that could not be priced")
	}
	if err := l.Charge(Frame{Control: true}); !errors.Is(err, ErrClassifierPanicked) {
		t.Fatalf("Charge: %v", err)
	}
	if st := l.Stats(); st.ClassifierPanics != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// A negative price is a Classifier bug: the frame is refused, never sent
// free (before: it went out uncounted).
func TestNegativePriceIsRefused(t *testing.T) {
	l := must(New("negative", func(Frame) (int, int) { return 0, -1 }, Bucket{Name: "b", Rate: 1, Burst: 1}))
	if _, err := l.WaitFor(context.Background(), req("x")); err == nil {
		t.Fatal("WaitFor admitted a frame priced at -1")
	}
	if l.Allow(req("x")) {
		t.Fatal("Allow admitted a frame priced at -1")
	}
}

// A ContextClassifier gets Wait's ctx; when ctx ends during its own wait,
// the frame is refused with ctx's error and takes no token. Try gets
// context.Background().
func TestContextClassifierGetsTheCallersContext(t *testing.T) {
	type key struct{}
	gate := make(chan struct{})
	var sawValue, sawBackground bool
	l, err := NewContext("gated", func(ctx context.Context, f Frame) (int, int) {
		if ctx == context.Background() {
			sawBackground = true
			return 0, 1
		}
		sawValue = ctx.Value(key{}) == "caller"
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return 0, 1
	}, Bucket{Name: "b", Rate: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "caller"))
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, Frame{}) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait after its ctx ended in the classifier: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not end with its ctx")
	}
	if !sawValue {
		t.Error("the classifier did not get the caller's ctx")
	}
	if got := l.Tokens(0); got < 1.9 {
		t.Errorf("a refused frame took tokens: %.2f left of 2", got)
	}
	close(gate)
	waited, err := l.WaitFor(context.Background(), Frame{})
	if err != nil || waited < 0 {
		t.Fatalf("WaitFor with the gate open: %v, %v", waited, err)
	}
	sawBackground = false
	if err := l.Try(Frame{}); err != nil || !sawBackground {
		t.Fatalf("Try: %v, classifier saw context.Background(): %v", err, sawBackground)
	}
	if st := l.Stats(); st.Rejected != 1 || st.Allowed != 2 {
		t.Errorf("stats %+v, want 1 rejected and 2 allowed", st)
	}
}
