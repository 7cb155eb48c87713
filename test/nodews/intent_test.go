package nodews

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Subscriptions as intent (issue 13) against intent.js, a venue the
// client's authors did not write its subscription behaviour for.

func venueChannels(t *testing.T, c *actors.Client) []string {
	t.Helper()
	res, err := c.Call(ctx(t), "channels", nil)
	if err != nil {
		t.Fatalf("channels: %v", err)
	}
	var got []string
	if err := json.Unmarshal(res, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func status(c *actors.Client, ch string) actors.ChannelStatus {
	for _, cs := range c.Health().Channels {
		if cs.Channel == ch {
			return cs
		}
	}
	return actors.ChannelStatus{}
}

// While the venue is down (handshakes refused with 503), a Subscribe and an
// Unsubscribe are kept; the connection after it has exactly the wanted set.
func TestIntentAcrossAVenueOutageWithNodeWS(t *testing.T) {
	c, in := connect(t, nodeVenue(t, "intent.js"), actors.WithRetryCount(1000))
	if err := c.Subscribe(ctx(t), "book.OLD"); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Call(testutil.Context(t, time.Second), "down", map[string]int{"ms": 1500})
	testutil.Eventually(t, 5*time.Second, "reconnecting", func() bool { return c.State() != actors.StateConnected })
	if st := status(c, "book.OLD").State; st != actors.ChannelStale {
		t.Fatalf("book.OLD while the venue is down: %v, want stale", st)
	}
	err := c.Subscribe(testutil.Context(t, 200*time.Millisecond), "book.NEW")
	if !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("Subscribe while down = %v, want ErrTimeout (the intent is kept)", err)
	}
	if err := c.Unsubscribe(ctx(t), "book.OLD"); err != nil {
		t.Fatalf("Unsubscribe while down = %v", err)
	}
	if err := c.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := venueChannels(t, c); !slices.Equal(got, []string{"book.NEW"}) {
		t.Fatalf("the venue has %v after the outage, want [book.NEW]", got)
	}
	gen := c.Health().Generation
	in.next(t, func(m actors.Inbound) bool { return m.Channel == "book.NEW" && m.Generation == gen })
	if cs := status(c, "book.NEW"); cs.State != actors.ChannelActive || cs.LastMessage.IsZero() {
		t.Fatalf("book.NEW: %+v", cs)
	}
}

// A channel the venue refuses is retried on the live connection until it
// is in; a channel the venue leaves out is a *PartialError naming both sides.
func TestIntentRefusalsWithNodeWS(t *testing.T) {
	c, _ := connect(t, nodeVenue(t, "intent.js"))
	err := c.Subscribe(ctx(t), "deny2.book.BTC")
	var rpcErr *actors.RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != 10028 || !strings.Contains(err.Error(), "deny2.book.BTC") {
		t.Fatalf("a refused Subscribe = %v, want the venue's 10028 naming the channel", err)
	}
	if !c.Health().Degraded {
		t.Fatal("a client with a refused channel is not degraded")
	}
	gen := c.Health().Generation
	testutil.Eventually(t, 10*time.Second, "the refused channel retried in", func() bool {
		return status(c, "deny2.book.BTC").State == actors.ChannelActive
	})
	if h := c.Health(); h.Generation != gen || h.Degraded {
		t.Fatalf("generation %d -> %d, degraded %v", gen, h.Generation, h.Degraded)
	}
	if got := venueChannels(t, c); !slices.Equal(got, []string{"deny2.book.BTC"}) {
		t.Fatalf("venue has %v", got)
	}

	err = c.Subscribe(ctx(t), "trades.ETH", "typo.trdes.ETH")
	var pe *actors.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Applied, []string{"trades.ETH"}) || !slices.Equal(pe.NotApplied, []string{"typo.trdes.ETH"}) {
		t.Fatalf("partly applied Subscribe = %v", err)
	}
	if st := status(c, "typo.trdes.ETH"); st.State != actors.ChannelFailed || st.NextRetry.IsZero() {
		t.Fatalf("the left-out channel: %+v", st)
	}
}

// A Subscribe whose caller cancels: context.Canceled, not a timeout, and
// the intent stays.
func TestIntentCancelledWaitWithNodeWS(t *testing.T) {
	c, _ := connect(t, nodeVenue(t, "intent.js"), actors.WithRetryCount(1000))
	_, _ = c.Call(testutil.Context(t, time.Second), "down", map[string]int{"ms": 1000})
	testutil.Eventually(t, 5*time.Second, "reconnecting", func() bool { return c.State() != actors.StateConnected })
	cctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := c.Subscribe(cctx, "book.X"); !errors.Is(err, context.Canceled) || errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("cancelled Subscribe = %v", err)
	}
	if err := c.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "book.X active", func() bool { return status(c, "book.X").State == actors.ChannelActive })
}
