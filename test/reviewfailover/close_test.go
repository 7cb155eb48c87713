package reviewfailover

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// A client closed while the order it carries waits for its answer: the
// order is not tried on another client (ErrDisconnected "the client is
// stopping", not ErrClosed, which would be retried), and it was sent once.
func TestGuardClientClosedMidOrder(t *testing.T) {
	got := make(chan int, 4)
	v := &venue{behave: func(f frame) { got <- f.server }}
	p := newPool(t, 3, v, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := p.b.Call(testutil.Context(t, 10*time.Second), "private/buy", map[string]any{"label": "c1"})
		errc <- err
	}()
	idx := <-got
	if err := p.clients[idx].Close(); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, actors.ErrClosed) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("client closed mid-order: %v; want ErrDisconnected only", err)
	}
	if n := v.count("private/buy"); n != 1 {
		t.Fatalf("the order reached the servers %d times, want 1", n)
	}
}

// Many concurrent orders, each with its label, through three venues that
// reset TCP after a third of the frames (at random) and answer the rest:
// no label is executed twice, and every failed order's error says it may
// have reached a venue (none failed "cleanly" after its frame left).
func TestGuardConcurrentOrdersUnderResetsNeverTwice(t *testing.T) {
	var mu sync.Mutex
	v := &venue{behave: func(f frame) {
		mu.Lock()
		r := rand.IntN(3)
		mu.Unlock()
		if r == 0 {
			f.conn.reset()
			return
		}
		f.conn.reply(f.data, "filled")
	}}
	p := newPool(t, 3, v, []actors.Option{actors.WithRequestTimeout(2 * time.Second)})
	ctx := testutil.Context(t, 30*time.Second)
	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.b.Call(ctx, "private/buy", map[string]any{"label": fmt.Sprintf("lbl-%03d", i)}, balancer.CallMaxAttempts(3))
		}()
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	for i, err := range errs {
		label := fmt.Sprintf("lbl-%03d", i)
		seen := 0
		v.mu.Lock()
		for _, f := range v.frames {
			if strings.Contains(string(f.data), label) {
				seen++
			}
		}
		v.mu.Unlock()
		noSecret(t, err)
		if seen > 1 {
			t.Errorf("%s executed %d times (err %v)", label, seen, err)
		}
		if err != nil && seen == 1 && !mayHaveReached(err) {
			t.Errorf("%s reached a venue but its error does not say so: %v", label, err)
		}
		if err != nil && seen == 0 && mayHaveReached(err) {
			t.Logf("%s never reached a venue but its error says it may have: %v", label, err)
		}
	}
}

// Finding 5 (docs). docs/balancing.md's "Errors:" paragraph of "Failing
// over without duplicating orders" still says "the last error when every
// client was tried": nothing of the earlier attempt's loss that the final
// error now also wraps, which is what a user reading the guide relies on.
func TestFinding5GuideDoesNotSayTheLossIsKept(t *testing.T) {
	doc, err := os.ReadFile("../../docs/balancing.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i := strings.Index(s, "## Failing over without duplicating orders")
	j := strings.Index(s, "## Redundant feeds")
	if i < 0 || j < i {
		t.Fatal("section not found")
	}
	sec := s[i:j]
	k := strings.Index(sec, "Errors:")
	if k < 0 {
		t.Fatal("no Errors: paragraph")
	}
	para := sec[k:]
	if !strings.Contains(para, "earlier") && !strings.Contains(para, "first `ErrDisconnected`") && !strings.Contains(para, "may have reached") {
		t.Errorf("the guide's Errors paragraph does not say the final error keeps an earlier attempt's ErrDisconnected/ErrTimeout: %q", strings.TrimSpace(para))
	}
}
