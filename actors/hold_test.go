package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/transport/wstest"
)

// holdRig is a client whose connect hook holds "user." on every reconnect
// (and rotation) and whose after-restore stage does what the test says, and a server
// that sends user.a notifications 1..n right after answering a
// public/subscribe (before anything else on that connection).
type holdRig struct {
	srv *wstest.Server
	c   *actors.Client
	in  *inbox

	mu       sync.Mutex
	maxN     int
	firsts   []actors.Released // what first was told
	stage    func(ctx context.Context, s *actors.Setup, h *actors.Hold) error
	released []actors.Released
	errs     []error
}

func newHoldRig(t *testing.T, n, maxN int, stage func(ctx context.Context, s *actors.Setup, h *actors.Hold) error) *holdRig {
	t.Helper()
	r := &holdRig{srv: wstest.NewServer(wstest.WithDeribit()), in: newInbox(), maxN: maxN, stage: stage}
	t.Cleanup(r.srv.Close)
	hook := func(_ context.Context, s *actors.Setup) error {
		if !s.Reconnected() && !s.Rotating() {
			return nil
		}
		h := s.Hold("user.", r.maxN, 0)
		s.AfterRestore(func(ctx context.Context, s *actors.Setup) error {
			// A round trip: the notifications the server sent before its
			// answer have reached the client actor.
			if _, err := s.Call(ctx, "public/test", nil); err != nil {
				return err
			}
			return r.stage(ctx, s, h)
		})
		return nil
	}
	r.c = connect(t, newSystem(t), r.srv.URL(), fast(actors.WithHandler(r.in.handle), actors.WithConnectHook(hook), actors.WithRetryCount(100))...)
	waitServerConn(t, r.srv)
	first := r.srv.Conns()[0]
	r.srv.AfterAnswer("public/subscribe", func(c *wstest.Conn) {
		if c == first {
			return // the first connection's own subscribe, below
		}
		for i := 1; i <= n; i++ {
			_ = c.Publish(context.Background(), "user.a", map[string]int{"n": i})
		}
		_ = c.Publish(context.Background(), "ticker.x", map[string]int{"n": 0})
	})
	if err := r.c.Subscribe(ctxT(t, 5*time.Second), "ticker.x"); err != nil {
		t.Fatal(err)
	}
	return r
}

// release is a stage that backfills one message, then releases through
// filter with an end message first, and records what Release said.
func (r *holdRig) release(filter func(string, []byte) []byte) func(context.Context, *actors.Setup, *actors.Hold) error {
	return func(ctx context.Context, s *actors.Setup, h *actors.Hold) error {
		s.Backfill("user.a", note("user.a", 0))
		rel, err := h.Release(ctx, filter, func(got actors.Released) {
			r.mu.Lock()
			r.firsts = append(r.firsts, got)
			r.mu.Unlock()
			s.Backfill("zenws.end", note("zenws.end", 0))
		})
		r.mu.Lock()
		r.released, r.errs = append(r.released, rel), append(r.errs, err)
		r.mu.Unlock()
		if err != nil && !errors.Is(err, actors.ErrHoldOverflow) {
			return err
		}
		return nil
	}
}

func note(channel string, n int) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"subscription","params":{"channel":%q,"data":{"n":%d}}}`, channel, n)
}

// label names a notification as channel:n, with a * when backfilled.
func label(in actors.Inbound) string {
	s := fmt.Sprintf("%s:%s", in.Channel, venue.Path(in.Data, "params", "data", "n"))
	if in.Backfill {
		s += "*"
	}
	return s
}

// reconnect drops the connection, waits for the next one to be live, and
// returns the stream of the live connection up to a marker sent once it is
// live (a user notification of an earlier attempt fails the test), less
// ticker.x: not held, it comes before or after the backfill as it
// arrives.
func (r *holdRig) reconnect(t *testing.T) []string {
	t.Helper()
	gen := r.c.Health().Generation
	r.srv.DropAll()
	eventually(t, 10*time.Second, "the reconnect", func() bool {
		return r.c.Health().Generation > gen && r.c.State() == actors.StateConnected
	})
	waitServerConn(t, r.srv)
	live := r.c.Health().Generation
	if err := r.srv.Conns()[0].Publish(ctxT(t, 5*time.Second), "user.end", map[string]int{"n": 0}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m := r.in.next(t)
		if m.Kind != actors.KindNotification || m.Generation <= gen {
			continue
		}
		if m.Generation != live && strings.HasPrefix(m.Channel, "user.") {
			t.Fatalf("a notification of connection %d (live: %d): %s", m.Generation, live, label(m))
		}
		if m.Channel == "user.end" {
			return got
		}
		if m.Generation == live && m.Channel != "ticker.x" {
			got = append(got, label(m))
		}
	}
}

func TestHoldReleasedAfterBackfillInOrderFiltered(t *testing.T) {
	var r *holdRig
	r = newHoldRig(t, 3, 0, func(ctx context.Context, s *actors.Setup, h *actors.Hold) error {
		return r.release(func(ch string, data []byte) []byte {
			if strings.Contains(string(data), `"n":2`) {
				return nil // the backfill had it
			}
			if strings.Contains(string(data), `"n":3`) {
				return note(ch, 30) // a rewrite
			}
			return data
		})(ctx, s, h)
	})
	got := strings.Join(r.reconnect(t), " ")
	if want := "user.a:0* zenws.end:0* user.a:1 user.a:30"; got != want {
		t.Fatalf("stream %q, want %q", got, want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) != 1 || r.errs[0] != nil || r.released[0] != (actors.Released{Held: 3, Filtered: 1}) || r.firsts[0] != r.released[0] {
		t.Fatalf("release: %+v %v, first told %+v", r.released, r.errs, r.firsts)
	}
}

func TestHoldBound(t *testing.T) {
	var r *holdRig
	r = newHoldRig(t, 5, 2, func(ctx context.Context, s *actors.Setup, h *actors.Hold) error {
		return r.release(nil)(ctx, s, h)
	})
	got := strings.Join(r.reconnect(t), " ")
	if want := "user.a:0* zenws.end:0* user.a:1 user.a:2"; got != want {
		t.Fatalf("stream %q, want %q", got, want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) != 1 || !errors.Is(r.errs[0], actors.ErrHoldOverflow) || r.released[0] != (actors.Released{Held: 2, Overflow: 3}) || r.firsts[0] != r.released[0] {
		t.Fatalf("release: %+v %v, first told %+v", r.released, r.errs, r.firsts)
	}
}

// A stage that never releases: the connection going live releases, in
// order; a connection that ends with notifications held drops them (the
// first attempt's stage fails), and a release after it says so.
func TestHoldNeverReleasedAndConnectionEnded(t *testing.T) {
	var (
		r     *holdRig
		mu    sync.Mutex
		fails = 1
		late  = make(chan *actors.Hold, 1)
	)
	r = newHoldRig(t, 3, 0, func(_ context.Context, s *actors.Setup, h *actors.Hold) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			late <- h
			return errors.New("this attempt fails")
		}
		return nil // and never releases
	})
	got := strings.Join(r.reconnect(t), " ")
	if want := "user.a:1 user.a:2 user.a:3"; got != want {
		t.Fatalf("stream %q, want %q", got, want)
	}
	h := <-late
	if _, err := h.Release(ctxT(t, 5*time.Second), nil, nil); !errors.Is(err, actors.ErrNotConnected) {
		t.Fatalf("release of an ended connection's hold: %v", err)
	}
	if n := r.c.Health().InboundDropped; n < 3 {
		t.Fatalf("InboundDropped %d: the failed attempt's 3 held notifications count", n)
	}
}

// A rotation's new connection with a hold no one releases: the switch
// releases it, in order.
func TestHoldReleasedAtRotationSwitch(t *testing.T) {
	r := newHoldRig(t, 3, 0, func(context.Context, *actors.Setup, *actors.Hold) error { return nil })
	gen := r.c.Health().Generation
	if err := r.c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case m := <-r.in.ch:
			if m.Generation > gen && m.Channel == "user.a" {
				got = append(got, label(m))
			}
		case <-time.After(5 * time.Second):
			var all []string
			for _, m := range r.in.all() {
				all = append(all, fmt.Sprintf("%d/%s", m.Generation, label(m)))
			}
			t.Fatalf("gen %d now %d: %v", gen, r.c.Health().Generation, all)
		}
	}
	if s := strings.Join(got, " "); s != "user.a:1 user.a:2 user.a:3" {
		t.Fatalf("the new connection's held notifications: %q", s)
	}
}
