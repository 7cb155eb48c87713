package reviewfailover

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// review2 guard. An order queued behind a 32 MiB write that the venue is
// slow to read (its read loop is held 1.5 s by the first frame) times out
// waiting for its turn to write (RequestTimeout 300 ms): its error says
// ErrNotSent (the balancer may try it elsewhere, and with one client it
// has nowhere to go). Then the venue reads on: the order must never reach
// it, late, once the big write is through, and the error must not say it
// may have reached a venue.
func TestReview2GuardQueuedOrderNotSentNeverWrittenLate(t *testing.T) {
	hold := make(chan struct{})
	var once sync.Once
	v := &venue{behave: func(f frame) {
		once.Do(func() {
			f.conn.ws.SetReadLimit(-1) // the pad is read whole, later
			<-hold
		})
	}}
	p := newPool(t, 1, v, []actors.Option{
		actors.Option(func(c *actors.Config) {
			c.RequestTimeout = 300 * time.Millisecond
			c.WriteTimeout = 10 * time.Second
		}),
	})
	ctx := testutil.Context(t, 20*time.Second)
	if err := p.clients[0].Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/hold"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server's read loop is held now
	bigDone := make(chan error, 1)
	t0 := time.Now()
	go func() {
		defer func() { t.Logf("big write ended after %v", time.Since(t0)) }()
		bigDone <- p.clients[0].Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/pad","params":{"pad":"`+strings.Repeat("x", 32<<20)+`"}}`))
	}()
	time.Sleep(1500 * time.Millisecond) // the big write is in the kernel's full buffers (checking 32 MiB is slow under -race)
	select {
	case berr := <-bigDone:
		t.Fatalf("premise: the big write is still in progress: it ended (%v)", berr)
	default:
	}
	_, err := p.b.Request(ctx, []byte(`{"jsonrpc":"2.0","id":77,"method":"private/buy","params":{"label":"o-77"}}`))
	noSecret(t, err)
	t.Logf("order returned after %v", time.Since(t0))
	close(hold)
	if berr := <-bigDone; berr != nil {
		t.Fatalf("premise: the big write goes through once the venue reads: %v", berr)
	}
	time.Sleep(500 * time.Millisecond)
	n := v.count("private/buy")
	v.mu.Lock()
	for i, f := range v.frames {
		t.Logf("frame %d: %.40s", i, f.data)
	}
	v.mu.Unlock()
	t.Logf("order: %v; frames with the order: %d", err, n)
	if errors.Is(err, transport.ErrNotSent) {
		if n != 0 {
			t.Errorf("the order's error says ErrNotSent (%v), but the venue received it %d times", err, n)
		}
		if mayHaveReached(err) {
			t.Errorf("ErrNotSent and may have reached at once: %v", err)
		}
		if errors.Is(err, balancer.ErrMaxAttempts) {
			t.Logf("max attempts: %v", err)
		}
		return
	}
	if err == nil || n > 1 {
		t.Errorf("order: %v, received %d times", err, n)
	}
}
