package nodews

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	vbinance "github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/internal/testutil"
)

// binanceStats is what binance.js counts over its life.
type binanceStats struct {
	Connections, Messages, MaxInWindow, Closed1008 int
}

func stats(t *testing.T, c *actors.Client) binanceStats {
	t.Helper()
	res, err := c.Call(ctx(t), "STATS", nil)
	if err != nil {
		t.Fatalf("STATS: %v", err)
	}
	var st binanceStats
	if err := json.Unmarshal(res, &st); err != nil {
		t.Fatalf("STATS %s: %v", res, err)
	}
	return st
}

// binance connects to binance.js (5 messages in any rolling second, 1008
// past it) with the Binance dialect and limiter lim, and no heartbeat of
// its own (the venue counts pings too; none are needed here).
func binance(t *testing.T, lim *ratelimit.Limiter) (*actors.Client, inbox) {
	t.Helper()
	return connect(t, nodeVenue(t, "binance.js"), actors.WithVenue(vbinance.Venue{}),
		actors.WithRateLimiter(lim, actors.RateWait), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
}

// 12 SUBSCRIBEs in a row through ratelimit.Binance() against a venue that
// counts as Binance does: none is closed with 1008 (before: the 6th went
// out 200 ms after the 5th and the venue closed the connection).
func TestBinanceRateLimitWithNodeWS(t *testing.T) {
	lim := ratelimit.Binance()
	c, in := binance(t, lim)
	for i := range 12 {
		if err := c.Subscribe(ctx(t), fmt.Sprintf("s%d@trade", i)); err != nil {
			t.Fatalf("SUBSCRIBE %d: %v (venue closes: %d)", i+1, err, c.Health().Reconnects)
		}
	}
	st := stats(t, c)
	if st.Closed1008 != 0 || st.MaxInWindow > ratelimit.BinanceMessagesPerSecond || st.Connections != 1 {
		t.Fatalf("venue saw %+v: want at most %d messages in any second and no 1008", st, ratelimit.BinanceMessagesPerSecond)
	}
	if st.Messages != 13 || c.Health().Generation != 1 {
		t.Fatalf("venue saw %d messages (want 12 SUBSCRIBEs and STATS), generation %d", st.Messages, c.Health().Generation)
	}
	if ls := lim.Stats(); ls.Waited < 2 {
		t.Fatalf("limiter %+v: 13 messages at 5 a second must wait at least twice", ls)
	}
	// Combined-stream events carry their stream as Channel.
	m := in.next(t, func(m actors.Inbound) bool { return m.Kind == actors.KindNotification })
	if !strings.HasSuffix(m.Channel, "@trade") || !strings.Contains(string(m.Data), `"stream":"`+m.Channel+`"`) {
		t.Fatalf("notification channel %q for %s", m.Channel, m.Data)
	}
}

// The venue does catch what the old preset did: a token bucket of rate 5
// and burst 5 gets the connection closed with 1008 (so the test above can
// fail).
func TestBinanceVenueClosesATokenBucketWithNodeWS(t *testing.T) {
	c, _ := binance(t, ratelimit.Simple(ratelimit.BinanceMessagesPerSecond, ratelimit.BinanceMessagesPerSecond))
	for i := range 7 {
		_ = c.Subscribe(testutil.Context(t, 3*time.Second), fmt.Sprintf("s%d@trade", i)) // the 6th or 7th may see the close
	}
	testutil.Eventually(t, 10*time.Second, "a reconnect after 1008", func() bool {
		return c.Health().Generation >= 2 && c.State() == actors.StateConnected
	})
	if st := stats(t, c); st.Closed1008 < 1 {
		t.Fatalf("venue saw %+v: the token bucket was not caught", st)
	}
}

// Binance's error object spells its text "msg": RPCError.Message has it.
func TestBinanceErrorTextWithNodeWS(t *testing.T) {
	c, _ := binance(t, ratelimit.Binance())
	err := c.Subscribe(ctx(t), "invalid@trade")
	var rpc *actors.RPCError
	if !errors.As(err, &rpc) || rpc.Code != 2 || rpc.Message != "Invalid request: unknown stream invalid@trade" {
		t.Fatalf("SUBSCRIBE of an unknown stream: %#v", err)
	}
	_, err = c.Call(ctx(t), "NO_SUCH", nil)
	if !errors.As(err, &rpc) || !strings.Contains(err.Error(), "Illegal characters") {
		t.Fatalf("unknown method: %v", err)
	}
}
