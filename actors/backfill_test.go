package actors_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/transport/wstest"
)

// hookSeen records what a connect hook was told on each connection.
type hookSeen struct {
	mu    sync.Mutex
	gens  []uint64
	recon []bool
	rot   []bool
	last  *actors.Setup
}

func (h *hookSeen) hook(_ context.Context, s *actors.Setup) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gens, h.recon, h.rot, h.last = append(h.gens, s.Generation()), append(h.recon, s.Reconnected()), append(h.rot, s.Rotating()), s
	if s.Reconnected() && !s.Rotating() {
		s.Backfill("user.trades.BTC-PERPETUAL.raw", []byte(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"user.trades.BTC-PERPETUAL.raw","data":[]}}`))
	}
	return nil
}

func (h *hookSeen) seen() (recon, rot []bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bool(nil), h.recon...), append([]bool(nil), h.rot...)
}

func TestBackfillOnReconnectNotFirstNorRotation(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	in, h := newInbox(), &hookSeen{}
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithHandler(in.handle), actors.WithConnectHook(h.hook))...)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "ticker.BTC"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if recon, rot := h.seen(); len(recon) != 2 || recon[0] || recon[1] || rot[0] || !rot[1] {
		t.Fatalf("first connection and rotation: reconnected %v rotating %v", recon, rot)
	}
	srv.DropAll()
	eventually(t, 10*time.Second, "the reconnect", func() bool { return c.Health().Generation >= 3 && c.State() == actors.StateConnected })
	if recon, rot := h.seen(); !recon[len(recon)-1] || rot[len(rot)-1] {
		t.Fatalf("a reconnect: reconnected %v rotating %v", recon, rot)
	}
	waitServerConn(t, srv)
	if err := srv.Conns()[0].WaitSubscribed(ctxT(t, 5*time.Second), "ticker.BTC"); err != nil {
		t.Fatal(err)
	}
	srv.Publish("ticker.BTC", map[string]int{"n": 1})
	gen := c.Health().Generation
	var got []actors.Inbound
	for {
		m := in.next(t)
		if m.Generation != gen {
			continue
		}
		got = append(got, m)
		if !m.Backfill {
			break
		}
	}
	if len(got) != 2 || !got[0].Backfill || got[0].Kind != actors.KindNotification || got[0].Channel != "user.trades.BTC-PERPETUAL.raw" ||
		got[1].Backfill || got[1].Channel != "ticker.BTC" || got[0].Seq >= got[1].Seq {
		t.Fatalf("the reconnect's stream: %+v", got)
	}
	for _, m := range in.all() {
		if m.Backfill && m.Generation != gen {
			t.Fatalf("a backfill on generation %d (first or rotation)", m.Generation)
		}
	}
}

func TestDeliveredWaitsForTheHandler(t *testing.T) {
	srv := wstest.NewServer() // echo
	defer srv.Close()
	release, blocked := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := &hookSeen{}
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithConnectHook(h.hook), actors.WithHandler(func(in actors.Inbound) {
		if string(in.Data) == "block" {
			once.Do(func() { close(blocked) })
			<-release
		}
	}))...)
	if err := c.Send(ctxT(t, 5*time.Second), []byte("block")); err != nil {
		t.Fatal(err)
	}
	<-blocked
	_ = c.Send(ctxT(t, 5*time.Second), []byte("after"))
	h.mu.Lock()
	setup := h.last
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := setup.Delivered(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Delivered with the handler stuck: %v", err)
	}
	close(release)
	if err := setup.Delivered(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if q := c.Health().InboundQueued; q != 0 {
		t.Fatalf("%d still queued after Delivered", q)
	}
}

// watchVenue is Deribit's venue with an Observer of "user." channels.
type watchVenue struct {
	deribit.Venue
	mu   sync.Mutex
	seen []string
}

func (*watchVenue) ObservePrefix() string { return "user." }
func (v *watchVenue) Observe(channel string, data []byte) {
	v.mu.Lock()
	v.seen = append(v.seen, channel)
	v.mu.Unlock()
	if string(data) != "" && channel == "user.boom" {
		panic("observer broken")
	}
}

var _ venue.Observer = (*watchVenue)(nil)

func TestObserverSeesItsChannelsBeforeTheHandler(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	v := &watchVenue{}
	var mu sync.Mutex
	var atHandler []int // how many the observer had seen when the handler got each
	in := newInbox()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithVenue(v), actors.WithHandler(func(m actors.Inbound) {
		v.mu.Lock()
		n := len(v.seen)
		v.mu.Unlock()
		mu.Lock()
		atHandler = append(atHandler, n)
		mu.Unlock()
		in.handle(m)
	}))...)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "user.a", "user.boom", "book.x"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"user.a", "book.x", "user.boom", "user.a"} {
		srv.Publish(ch, 1)
	}
	var got []string
	for len(got) < 4 {
		got = append(got, in.next(t).Channel)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if len(v.seen) != 3 || v.seen[0] != "user.a" || v.seen[1] != "user.boom" || got[2] != "user.boom" {
		t.Fatalf("observed %v, delivered %v", v.seen, got)
	}
	if atHandler[0] != 1 || atHandler[1] != 1 || atHandler[2] != 2 || atHandler[3] != 3 {
		t.Fatalf("observer counts at the handler: %v", atHandler)
	}
}
