package nodews

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
	zvenue "github.com/zenws/zenws/actors/venue"
	binancevenue "github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/internal/testutil"
)

// Against a book venue we did not write (book.js, from Deribit's docs):
// lost changes and a dropped connection each put a gap notice in the
// stream, and what a consumer builds from it never applies a change that
// does not follow the one before: after every notice the next book message
// is a snapshot.
func TestSequenceGuardWithNodeWS(t *testing.T) {
	const ch = "book.BTC-PERPETUAL.100ms"
	var mu sync.Mutex
	var got []actors.Inbound
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), nodeVenue(t, "book.js"),
		actors.WithVenue(deribit.Venue{}), actors.WithHeartbeat(actors.HeartbeatDisabled, 0),
		actors.WithRetryDelay(20*time.Millisecond), actors.WithMaxBackoff(100*time.Millisecond),
		func(c *actors.Config) { c.StableAfter = minStableAfter },
		actors.WithHandler(func(in actors.Inbound) {
			mu.Lock()
			got = append(got, in)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Subscribe(ctx(t), ch); err != nil {
		t.Fatal(err)
	}
	count := func(reason actors.GapReason) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, in := range got {
			if in.Kind == actors.KindGap && in.Gap.Reason == reason {
				n++
			}
		}
		return n
	}
	for i := 1; i <= 3; i++ {
		testutil.Eventually(t, 5*time.Second, "in sync", func() bool { return c.Health().Degraded == false })
		time.Sleep(30 * time.Millisecond)
		if _, err := c.Call(ctx(t), "lose", nil); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, "a sequence gap", func() bool { return count(actors.GapSequence) >= i })
	}
	testutil.Eventually(t, 5*time.Second, "in sync", func() bool { return c.Health().Degraded == false })
	_, _ = c.Call(testutil.Context(t, time.Second), "drop", nil)
	testutil.Eventually(t, 10*time.Second, "a reconnect gap", func() bool { return count(actors.GapReconnect) == 1 })
	time.Sleep(100 * time.Millisecond)
	raw, err := c.Call(ctx(t), "stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	var stats struct{ Subscribes, Unsubscribes int }
	_ = json.Unmarshal(raw, &stats)

	mu.Lock()
	msgs := append([]actors.Inbound(nil), got...)
	mu.Unlock()
	var last uint64
	have, changes, snapshots := false, 0, 0
	for i, in := range msgs {
		if in.Kind == actors.KindGap {
			have = false
			continue
		}
		d := zvenue.Path(in.Data, "params", "data")
		id, _ := jsonrpc.Uint(jsonrpc.Field(d, "change_id"))
		prev, _ := jsonrpc.Uint(jsonrpc.Field(d, "prev_change_id"))
		switch {
		case in.Snapshot:
			last, have = id, true
			snapshots++
		case !have:
			t.Fatalf("message %d: a change (%d) without a snapshot since the last notice", i, id)
		case prev != last:
			t.Fatalf("message %d: change %d follows %d, the book is at %d, and no notice came", i, id, prev, last)
		default:
			last = id
			changes++
		}
	}
	h := c.Health()
	t.Logf("%d messages: %d changes, %d snapshots; gaps %d (sequence %d, reconnect %d), resyncs %d, dropped %d; venue: %d subscribes, %d unsubscribes",
		len(msgs), changes, snapshots, h.SequenceGaps, count(actors.GapSequence), count(actors.GapReconnect), h.Resyncs, h.SequenceDropped, stats.Subscribes, stats.Unsubscribes)
	if int(h.SequenceGaps) != count(actors.GapSequence)+count(actors.GapReconnect) || h.Resyncs != uint64(count(actors.GapSequence)) {
		t.Fatalf("Health counts %d gaps and %d resyncs for %d + %d notices", h.SequenceGaps, h.Resyncs, count(actors.GapSequence), count(actors.GapReconnect))
	}
	if stats.Unsubscribes < 3 || stats.Subscribes < 5 { // one subscribe, three resubscribes, one restore
		t.Fatalf("the venue saw %d subscribes and %d unsubscribes", stats.Subscribes, stats.Unsubscribes)
	}
}

// Against a Binance-like diff depth venue we did not write (depth.js, from
// Binance's "manage a local order book" guide): the stream starts from the
// REST snapshot the user's fetch gets (the events meanwhile held and
// replayed: the first one holds lastUpdateId+1), and each lost event
// fetches again; a consumer that applies the stream as Binance's guide says
// never sees an event that does not follow.
func TestDepthSnapshotWithNodeWS(t *testing.T) {
	const stream = "btcusdt@depth@100ms"
	url := nodeVenue(t, "depth.js")
	rest := "http" + strings.TrimPrefix(strings.TrimSuffix(url, "/"), "ws")
	var mu sync.Mutex
	var got []actors.Inbound
	fetch := func(ctx context.Context, channel string) (actors.Snapshot, error) {
		sym := strings.ToUpper(strings.SplitN(channel, "@", 2)[0])
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rest+"/api/v3/depth?symbol="+sym+"&limit=1000", nil)
		if err != nil {
			return actors.Snapshot{}, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return actors.Snapshot{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return actors.Snapshot{}, err
		}
		var snap struct{ LastUpdateID uint64 }
		if err := json.Unmarshal(body, &snap); err != nil {
			return actors.Snapshot{}, err
		}
		return actors.Snapshot{Data: body, Seq: snap.LastUpdateID}, nil
	}
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), url,
		actors.WithVenue(binancevenue.Venue{}), actors.WithHeartbeat(actors.HeartbeatDisabled, 0),
		actors.WithRateLimiter(nil, actors.RateWait), actors.WithSnapshot(fetch),
		actors.WithRetryDelay(20*time.Millisecond), actors.WithMaxBackoff(100*time.Millisecond), // the resyncs back off too
		actors.WithHandler(func(in actors.Inbound) {
			mu.Lock()
			got = append(got, in)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Subscribe(ctx(t), stream); err != nil {
		t.Fatal(err)
	}
	snapshots := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, in := range got {
			if in.Snapshot {
				n++
			}
		}
		return n
	}
	testutil.Eventually(t, 5*time.Second, "the first snapshot", func() bool { return snapshots() == 1 })
	for i := 2; i <= 4; i++ {
		time.Sleep(50 * time.Millisecond)
		if _, err := c.Request(ctx(t), []byte(`{"method":"LOSE","id":`+strconv.Itoa(1000+i)+`}`)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, "a snapshot after the loss", func() bool { return snapshots() == i })
	}
	time.Sleep(50 * time.Millisecond)

	mu.Lock()
	msgs := append([]actors.Inbound(nil), got...)
	mu.Unlock()
	var last uint64
	have, events, gaps := false, 0, 0
	for i, in := range msgs {
		switch {
		case in.Kind == actors.KindGap:
			have = false
			gaps++
		case in.Snapshot:
			var s struct{ LastUpdateID uint64 }
			_ = json.Unmarshal(in.Data, &s)
			last, have = s.LastUpdateID, true
		default:
			d := jsonrpc.Field(in.Data, "data")
			first, _ := jsonrpc.Uint(jsonrpc.Field(d, "U"))
			u, _ := jsonrpc.Uint(jsonrpc.Field(d, "u"))
			if !have || first > last+1 || u < last+1 {
				t.Fatalf("message %d: event %d-%d with the book at %d (in sync %v)", i, first, u, last, have)
			}
			last = u
			events++
		}
	}
	h := c.Health()
	t.Logf("%d messages: %d events, %d snapshots, %d gap notices; Health: %d gaps, %d resyncs, %d dropped", len(msgs), events, snapshots(), gaps, h.SequenceGaps, h.Resyncs, h.SequenceDropped)
	if gaps != 3 || h.Resyncs != 4 {
		t.Fatalf("%d gap notices and %d resyncs for 3 losses (and the start)", gaps, h.Resyncs)
	}
}
