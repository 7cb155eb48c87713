package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/transport/wstest"
)

// bookFeed is a Deribit-like order book on a wstest server: a subscribe to
// a book channel answers with a snapshot at the current change_id, and
// change publishes the next change to every subscribed connection.
type bookFeed struct {
	srv             *wstest.Server
	mu              sync.Mutex
	id              uint64
	subs, unsubs    atomic.Int64
	snapshotOnSubOf string       // the book channel
	snapshots       atomic.Int64 // how many subscribes get their snapshot; < 0: all
}

func newBookFeed(t *testing.T, channel string, opts ...wstest.Option) *bookFeed {
	f := &bookFeed{id: 100, snapshotOnSubOf: channel}
	f.snapshots.Store(-1)
	sub := func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
		var p struct{ Channels []string }
		_ = json.Unmarshal(params, &p)
		got := c.Subscribe(p.Channels...)
		for _, ch := range got {
			if ch == f.snapshotOnSubOf {
				if f.subs.Add(1) > f.snapshots.Load() && f.snapshots.Load() >= 0 {
					continue // this venue forgets the snapshot
				}
				f.mu.Lock()
				id := f.id
				f.mu.Unlock()
				_ = c.Publish(context.Background(), ch, map[string]any{"type": "snapshot", "change_id": id})
			}
		}
		return got, nil
	}
	unsub := func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
		var p struct{ Channels []string }
		_ = json.Unmarshal(params, &p)
		f.unsubs.Add(1)
		return c.Unsubscribe(p.Channels...), nil
	}
	f.srv = wstest.NewServer(append([]wstest.Option{wstest.WithResponder("public/subscribe", sub),
		wstest.WithResponder("public/unsubscribe", unsub)}, opts...)...)
	t.Cleanup(f.srv.Close)
	return f
}

// change publishes the next change; skip > 0 leaves that many change ids
// out before it (a gap).
func (f *bookFeed) change(skip uint64) {
	f.mu.Lock()
	f.id += 1 + skip
	id := f.id
	f.mu.Unlock()
	f.srv.Publish(f.snapshotOnSubOf, map[string]any{"type": "change", "change_id": id, "prev_change_id": id - 1})
}

// bookMsg is one delivered message of the book channel, as a consumer
// reads it.
type bookMsg struct {
	kind     actors.InboundKind
	snapshot bool
	id, prev uint64
	gap      *actors.Gap
}

func (m bookMsg) String() string {
	if m.gap != nil {
		return fmt.Sprintf("gap(%v expected %d got %d)", m.gap.Reason, m.gap.Expected, m.gap.Got)
	}
	if m.snapshot {
		return fmt.Sprintf("snapshot(%d)", m.id)
	}
	return fmt.Sprintf("change(%d<-%d)", m.id, m.prev)
}

func bookMsgs(in []actors.Inbound, channel string) []bookMsg {
	var out []bookMsg
	for _, m := range in {
		if m.Channel != channel {
			continue
		}
		if m.Kind == actors.KindGap {
			out = append(out, bookMsg{kind: m.Kind, gap: m.Gap})
			continue
		}
		d := venue.Path(m.Data, "params", "data")
		id, _ := jsonrpc.Uint(jsonrpc.Field(d, "change_id"))
		prev, _ := jsonrpc.Uint(jsonrpc.Field(d, "prev_change_id"))
		out = append(out, bookMsg{kind: m.Kind, snapshot: m.Snapshot, id: id, prev: prev})
	}
	return out
}

// checkBook is what a consumer relies on: the stream starts with a
// snapshot; each change follows the message before it; after a gap notice
// the next message is a snapshot.
func checkBook(t *testing.T, msgs []bookMsg) {
	t.Helper()
	var last uint64
	have := false
	for i, m := range msgs {
		switch {
		case m.gap != nil:
			have = false
		case m.snapshot:
			last, have = m.id, true
		case !have:
			t.Fatalf("message %d, %v, is a change without a snapshot before it: %v", i, m, msgs)
		case m.prev != last:
			t.Fatalf("message %d, %v, does not follow %d and no gap notice came before it: %v", i, m, last, msgs)
		default:
			last = m.id
		}
	}
}

func bookClient(t *testing.T, url string, b *inbox, opts ...actors.Option) *actors.Client {
	return connect(t, newSystem(t), url, fast(append([]actors.Option{
		actors.WithVenue(deribit.Venue{}),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0),
		actors.WithHandler(b.handle)}, opts...)...)...)
}

// A change that does not follow the one before puts a gap notice in the
// stream; the book is subscribed again, alone, and the next message of it
// is the fresh snapshot.
func TestSequenceGapResubscribes(t *testing.T) {
	const ch = "book.BTC-PERPETUAL.100ms"
	f := newBookFeed(t, ch)
	b := newInbox()
	c := bookClient(t, f.srv.URL(), b)
	if err := c.Subscribe(ctxT(t, 5*time.Second), ch, "ticker.BTC-PERPETUAL.100ms"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.change(0)
	}
	f.change(1) // 104 is lost
	eventually(t, 5*time.Second, "the book subscribed again", func() bool { return f.subs.Load() >= 2 && f.unsubs.Load() >= 1 })
	eventually(t, 5*time.Second, "in sync again", func() bool {
		for _, s := range c.Health().Channels {
			if s.Channel == ch {
				return s.State == actors.ChannelActive
			}
		}
		return false
	})
	for range 3 {
		f.change(0)
	}
	eventually(t, 5*time.Second, "the changes after the resync", func() bool {
		m := bookMsgs(b.all(), ch)
		return len(m) > 0 && m[len(m)-1].id == f.id
	})
	msgs := bookMsgs(b.all(), ch)
	checkBook(t, msgs)
	gaps := 0
	for _, m := range msgs {
		if m.gap != nil {
			gaps++
			if m.gap.Reason != actors.GapSequence || m.gap.Expected != 104 || m.gap.Got != 105 || m.gap.Channel != ch {
				t.Fatalf("gap notice %+v, want sequence, expected 104, got 105", *m.gap)
			}
		}
	}
	h := c.Health()
	if gaps != 1 || h.SequenceGaps != 1 || h.Resyncs != 1 {
		t.Fatalf("%d gap notices, Health: %d gaps, %d resyncs; want 1 each: %v", gaps, h.SequenceGaps, h.Resyncs, msgs)
	}
	t.Logf("delivered: %v (dropped %d)", msgs, h.SequenceDropped)
}

// After a reconnect the first message of a book is announced by a gap
// notice (what was sent while there was no connection is lost), and it is
// the restored subscription's snapshot.
func TestSequenceGapAfterReconnect(t *testing.T) {
	const ch = "book.ETH-PERPETUAL.raw"
	f := newBookFeed(t, ch)
	b := newInbox()
	c := bookClient(t, f.srv.URL(), b)
	if err := c.Subscribe(ctxT(t, 5*time.Second), ch); err != nil {
		t.Fatal(err)
	}
	f.change(0)
	eventually(t, 5*time.Second, "the first change", func() bool { return len(bookMsgs(b.all(), ch)) == 2 })
	conns, _ := f.srv.WaitConns(ctxT(t, 5*time.Second), 1)
	conns[0].Drop()
	eventually(t, 10*time.Second, "reconnected and restored", func() bool { return f.subs.Load() >= 2 })
	eventually(t, 5*time.Second, "the restored snapshot", func() bool { return len(bookMsgs(b.all(), ch)) >= 4 })
	f.change(0)
	eventually(t, 5*time.Second, "a change after it", func() bool {
		m := bookMsgs(b.all(), ch)
		return m[len(m)-1].id == f.id
	})
	msgs := bookMsgs(b.all(), ch)
	checkBook(t, msgs)
	if g := msgs[2].gap; g == nil || g.Reason != actors.GapReconnect || g.Expected != 102 || g.Generation != 2 || !msgs[3].snapshot {
		t.Fatalf("want a reconnect gap (expected 102, generation 2) then the snapshot, got %v", msgs)
	}
	if h := c.Health(); h.Resyncs != 0 {
		t.Fatalf("a restore's snapshot needs no resync, %d counted", h.Resyncs)
	}
}

// A channel unsubscribed while it is being put back in sync leaves nothing
// behind: the client is not degraded, and its status is gone.
func TestUnsubscribeWhileResyncing(t *testing.T) {
	const ch = "book.SOL-PERPETUAL.100ms"
	f := newBookFeed(t, ch)
	f.snapshots.Store(1) // the resubscribe's snapshot never comes
	b := newInbox()
	c := bookClient(t, f.srv.URL(), b)
	if err := c.Subscribe(ctxT(t, 5*time.Second), ch); err != nil {
		t.Fatal(err)
	}
	f.change(0)
	f.change(3)
	eventually(t, 5*time.Second, "resyncing", func() bool {
		h := c.Health()
		return h.Degraded && len(h.Channels) == 1 && h.Channels[0].State == actors.ChannelResyncing
	})
	f.change(0) // dropped: out of sync
	if err := c.Unsubscribe(ctxT(t, 5*time.Second), ch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "not degraded, no status", func() bool {
		h := c.Health()
		return !h.Degraded && len(h.Channels) == 0
	})
	if h := c.Health(); h.SequenceDropped == 0 {
		t.Fatal("the update after the gap was not dropped")
	}
	checkBook(t, bookMsgs(b.all(), ch))
}

// deltaRule reads Binance-style ranges (U, u) from a Deribit-style
// notification and resyncs from the user's snapshot.
type deltaRule struct{}

func (deltaRule) Sequence(ch string, data []byte) (venue.Seq, bool) {
	d := venue.Path(data, "params", "data")
	first, ok1 := jsonrpc.Uint(jsonrpc.Field(d, "U"))
	last, ok2 := jsonrpc.Uint(jsonrpc.Field(d, "u"))
	return venue.Seq{First: first, Last: last, Resync: venue.ResyncSnapshot}, ok1 && ok2
}

// A delta stream starts from the user's snapshot: the updates that arrive
// while it is fetched are held and delivered after it, those it already
// holds dropped; a gap fetches again.
func TestSequenceSnapshotFetch(t *testing.T) {
	const ch = "depth.BTCUSDT"
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	publish := func(first, last uint64) { srv.Publish(ch, map[string]any{"U": first, "u": last}) }
	release := make(chan uint64, 4) // the Seq of the snapshot a fetch returns
	var fetches atomic.Int64
	b := newInbox()
	c := bookClient(t, srv.URL(), b, actors.WithSequencer(deltaRule{}),
		actors.WithSnapshot(func(ctx context.Context, channel string) (actors.Snapshot, error) {
			fetches.Add(1)
			var at uint64
			select {
			case at = <-release:
			case <-ctx.Done():
				return actors.Snapshot{}, ctx.Err()
			}
			return actors.Snapshot{Data: []byte(fmt.Sprintf(`{"snapshot":%d}`, at)), Seq: at}, nil
		}))
	if err := c.Subscribe(ctxT(t, 5*time.Second), ch); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		publish(i, i)
	}
	eventually(t, 5*time.Second, "the first fetch", func() bool { return fetches.Load() == 1 })
	eventually(t, 5*time.Second, "the updates held", func() bool { return c.Health().MessagesIn >= 11 })
	release <- 8 // the venue's snapshot lags the stream a little
	publish(11, 12)
	publish(14, 15) // 13 is lost
	eventually(t, 5*time.Second, "the second fetch", func() bool { return fetches.Load() == 2 })
	publish(16, 16)
	release <- 14
	publish(17, 18)
	eventually(t, 5*time.Second, "the last update", func() bool {
		all := b.all()
		return len(all) > 0 && string(all[len(all)-1].Data) != "" && jsonrpc.Field(venue.Path(all[len(all)-1].Data, "params", "data"), "u") != nil &&
			string(jsonrpc.Field(venue.Path(all[len(all)-1].Data, "params", "data"), "u")) == "18"
	})
	var got []string
	for _, m := range b.all() {
		switch {
		case m.Kind == actors.KindGap:
			got = append(got, fmt.Sprintf("gap(%d,%d)", m.Gap.Expected, m.Gap.Got))
		case m.Snapshot:
			got = append(got, string(m.Data))
		case m.Channel == ch:
			d := venue.Path(m.Data, "params", "data")
			got = append(got, string(jsonrpc.Field(d, "U"))+"-"+string(jsonrpc.Field(d, "u")))
		}
	}
	want := []string{`{"snapshot":8}`, "9-9", "10-10", "11-12", "gap(13,14)", `{"snapshot":14}`, "14-15", "16-16", "17-18"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v\nwant      %v", got, want)
	}
	if h := c.Health(); h.Resyncs != 2 || h.SequenceGaps != 1 {
		t.Fatalf("Health: %d resyncs, %d gaps; want 2 and 1", h.Resyncs, h.SequenceGaps)
	}
}

// A snapshot fetch that fails (or panics) is asked again with backoff; the
// channel stays out of sync meanwhile and says so.
func TestSequenceSnapshotFetchFails(t *testing.T) {
	const ch = "depth.ETHUSDT"
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	var fetches atomic.Int64
	b := newInbox()
	c := bookClient(t, srv.URL(), b, actors.WithSequencer(deltaRule{}),
		actors.WithSnapshot(func(ctx context.Context, channel string) (actors.Snapshot, error) {
			switch fetches.Add(1) {
			case 1:
				return actors.Snapshot{}, errors.New("HTTP 503")
			case 2:
				panic("a user's bug")
			}
			return actors.Snapshot{Data: []byte(`{"snapshot":1}`), Seq: 1}, nil
		}))
	if err := c.Subscribe(ctxT(t, 5*time.Second), ch); err != nil {
		t.Fatal(err)
	}
	srv.Publish(ch, map[string]any{"U": 1, "u": 1})
	srv.Publish(ch, map[string]any{"U": 2, "u": 2})
	eventually(t, 10*time.Second, "in sync after two failed fetches", func() bool { return len(b.all()) >= 2 })
	all := b.all()
	if !all[0].Snapshot || string(all[0].Data) != `{"snapshot":1}` || all[1].Snapshot {
		t.Fatalf("delivered %d messages, first %q", len(all), all[0].Data)
	}
	if h := c.Health(); h.SnapshotFailures != 2 || fetches.Load() != 3 {
		t.Fatalf("%d snapshot failures, %d fetches; want 2 and 3", h.SnapshotFailures, fetches.Load())
	}
}

// panicky is a Sequencer with a bug.
type panicky struct{}

func (panicky) Sequence(string, []byte) (venue.Seq, bool) { panic("a rule's bug") }

// backwards says every update's range ends before it starts.
type backwards struct{}

func (backwards) Sequence(string, []byte) (venue.Seq, bool) {
	return venue.Seq{First: 10, Last: 1}, true
}

// A Sequencer that panics, or reads nonsense, costs no message: the frames
// are delivered as they came, unchecked.
func TestSequencerFaultsDeliverAsIs(t *testing.T) {
	for name, rule := range map[string]venue.Sequencer{"panics": panicky{}, "backwards": backwards{}} {
		t.Run(name, func(t *testing.T) {
			srv := wstest.NewServer(wstest.WithDeribit())
			t.Cleanup(srv.Close)
			b := newInbox()
			c := bookClient(t, srv.URL(), b, actors.WithSequencer(rule))
			if err := c.Subscribe(ctxT(t, 5*time.Second), "book.X"); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				srv.Publish("book.X", map[string]any{"type": "change", "change_id": 5 - i})
			}
			eventually(t, 5*time.Second, "every message", func() bool { return len(b.all()) == 5 })
			if h := c.Health(); h.SequenceGaps != 0 || h.SequenceDropped != 0 || h.State != actors.StateConnected {
				t.Fatalf("Health: %+v", h)
			}
		})
	}
}

// A channel that stays silent past its freshness bound is subscribed again,
// alone, with a stale notice in the stream; still silent after that, the
// connection is stalled and replaced (a rotation: no gap for the others).
func TestFreshnessResubscribesThenReplaces(t *testing.T) {
	const quiet, busy = "ticker.QUIET", "book.BUSY"
	f := newBookFeed(t, busy)
	b := newInbox()
	c := bookClient(t, f.srv.URL(), b, actors.WithFreshness("ticker.*", 150*time.Millisecond))
	if err := c.Subscribe(ctxT(t, 5*time.Second), quiet, busy); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the busy book keeps talking
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				f.change(0)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	eventually(t, 10*time.Second, "a stale resubscribe, then a stall", func() bool {
		h := c.Health()
		return h.StaleResubscribes >= 1 && h.Stalls >= 1 && h.Rotations >= 1
	})
	var stale int
	for _, m := range b.all() {
		if m.Kind == actors.KindGap && m.Gap.Reason == actors.GapStale {
			stale++
			if m.Channel != quiet {
				t.Fatalf("a stale notice for %s", m.Channel)
			}
		}
	}
	if stale == 0 {
		t.Fatal("no stale notice in the stream")
	}
	checkBook(t, bookMsgs(b.all(), busy)) // the rotation cost the busy book nothing
	h := c.Health()
	t.Logf("stale resubscribes %d, stalls %d, rotations %d, book gaps %d", h.StaleResubscribes, h.Stalls, h.Rotations, h.SequenceGaps)
	if h.SequenceGaps != 0 {
		t.Fatalf("the rotation showed %d gaps on the busy book", h.SequenceGaps)
	}
}

// Freshness rules are checked when the client is configured.
func TestFreshnessRulesValidated(t *testing.T) {
	for name, opt := range map[string]actors.Option{
		"short": actors.WithFreshness("x", time.Millisecond),
		"empty": actors.WithFreshness("", time.Second),
		"too many": func(c *actors.Config) {
			for range 65 {
				c.Freshness = append(c.Freshness, actors.FreshnessRule{Pattern: "x", MaxSilence: time.Second})
			}
		},
	} {
		_, err := actors.NewConfig("ws://127.0.0.1:1", opt)
		var ce *actors.ConfigError
		if !errors.As(err, &ce) || ce.Field != "Freshness" {
			t.Errorf("%s: Validate = %v, want a Freshness *ConfigError", name, err)
		}
	}
}
