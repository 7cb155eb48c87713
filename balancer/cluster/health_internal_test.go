package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// A summary with hostile text still marshals (a protobuf string must be
// valid UTF-8: one bad error text would fail the whole batch) and stays
// bounded, and what a node reads back is bounded too, whatever another
// member sends.
func TestSummaryBoundsHostileText(t *testing.T) {
	h := actors.Health{
		State:          actors.StateConnected,
		Label:          strings.Repeat("é", 1000), // 2,000 bytes: cut on a rune boundary
		Endpoint:       "ws://127.0.0.1:1/" + strings.Repeat("p", 5000),
		LastError:      errors.New("venue said \xff\xfe" + strings.Repeat("x", 100_000)),
		ConnectedSince: time.Now(),
		ChannelCounts:  actors.ChannelCounts{Total: 3, Active: 2, Failed: 1},
		Degraded:       true,
	}
	s := summaryOf("c1", h, channelsOf(h.ChannelCounts))
	b, err := proto.Marshal(s)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back wire.ClientHealth
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := healthOf(&back)
	if len(got.Label) > maxLabel || !utf8.ValidString(got.Label) || !strings.HasPrefix(got.Label, "éé") {
		t.Errorf("label: %d bytes, valid %v", len(got.Label), utf8.ValidString(got.Label))
	}
	if len(got.Endpoint) > maxText || len(got.LastError.Error()) > maxText ||
		!strings.HasPrefix(got.LastError.Error(), "venue said \uFFFD") {
		t.Errorf("endpoint %d bytes, last error %d bytes %q", len(got.Endpoint), len(got.LastError.Error()), got.LastError.Error()[:20])
	}
	if got.ChannelCounts != h.ChannelCounts || !got.Degraded || got.ConnectedSince.UnixNano() != h.ConnectedSince.UnixNano() {
		t.Errorf("read back: %+v", got)
	}

	// Another member's summary, built by other code: huge strings and
	// negative durations are bounded on the way in.
	hostile := &wire.ClientHealth{Label: strings.Repeat("L", 1<<20), LastError: strings.Repeat("E", 1<<20),
		RttP50Ns: -5, RttLastNs: -1, ConnectedSinceUnixNs: 99, State: wire.State_STATE_RECONNECTING}
	got = healthOf(hostile)
	if len(got.Label) != maxLabel || len(got.LastError.Error()) != maxText || got.RTTP50 != 0 || got.RTTLast != 0 ||
		!got.ConnectedSince.IsZero() {
		t.Errorf("hostile summary read as label %d bytes, error %d bytes, p50 %v, last %v, connected since %v",
			len(got.Label), len(got.LastError.Error()), got.RTTP50, got.RTTLast, got.ConnectedSince)
	}

	// A change of degraded goes out at once; a change of counts or text
	// only with the next batch, but it does go.
	old := summaryOf("c1", actors.Health{State: actors.StateConnected}, nil)
	if deg := summaryOf("c1", actors.Health{State: actors.StateConnected, Degraded: true}, nil); !urgent(old, deg) {
		t.Error("degraded is not urgent")
	}
	more := summaryOf("c1", actors.Health{State: actors.StateConnected}, channelsOf(actors.ChannelCounts{Total: 1, Pending: 1}))
	if urgent(old, more) || same(old, more) {
		t.Errorf("a change of channel counts: urgent %v, same %v", urgent(old, more), same(old, more))
	}
	if e := summaryOf("c1", actors.Health{State: actors.StateConnected, LastError: errors.New("x")}, nil); same(old, e) {
		t.Error("a new last error is the same summary")
	}
}
