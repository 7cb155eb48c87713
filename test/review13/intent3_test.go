package review13

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Odd channel names: JSON specials round-trip; invalid UTF-8 is refused or
// applied, never pending forever.
func TestOddChannelNames(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	for _, ch := range []string{`quote"d`, `back\slash`, "uni\u2603code", "tab\there", "<script>", "nul\x00byte"} {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Subscribe(sctx, ch)
		cancel()
		if err != nil && !errors.Is(err, actors.ErrInvalidRequest) {
			t.Errorf("%q: %v", ch, err)
		}
		if err == nil && !v.newestSubs()[ch] {
			t.Errorf("%q: nil but the venue has %v", ch, v.newestSubs())
		}
	}
	bad := "bad\xffutf8"
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	err := c.Subscribe(sctx, bad)
	cancel()
	t.Logf("invalid UTF-8 channel: %v; status %+v", err, func() actors.ChannelStatus { s, _ := chanState(c, bad); return s }())
	if err != nil && !errors.Is(err, actors.ErrInvalidRequest) {
		// Found by review (fixed) (if it fails here): a channel name that is not valid
		// UTF-8 is accepted into the wanted set, but JSON encoding turns it
		// into U+FFFD on the wire, so the venue's confirmation never matches
		// and it stays pending/failed (retried forever, client degraded).
		// Expected: ErrInvalidRequest at once (nothing recorded).
		t.Errorf("invalid-UTF-8 channel neither refused nor applied: %v", err)
	}
}

// The snapshot that says Connected after a reconnect has the restore done:
// no channel stale or pending in the same snapshot; Degraded only while
// connected.
func TestConnectedSnapshotHasRestore(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, "s.1", "s.2", "s.3"); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		v.delay.Store(int64(50 * time.Millisecond))
		gen := c.Health().Generation
		v.dropAll()
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			h := c.Health()
			if h.State != actors.StateConnected && h.Degraded {
				t.Errorf("Degraded while %v", h.State)
			}
			if h.State == actors.StateConnected && h.Generation > gen {
				for _, s := range h.Channels {
					if s.State != actors.ChannelActive {
						t.Errorf("round %d: connected snapshot with %s %v", round, s.Channel, s.State)
					}
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// With RestoreSubscriptions off a rotation still carries the channels over.
func TestRestoreOffRotationCarries(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v, actors.WithRestoreSubscriptions(false))
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, "rc.1", "rc.2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "one connection", func() bool { return len(v.liveConns()) == 1 })
	if s := v.newestSubs(); !s["rc.1"] || !s["rc.2"] {
		t.Errorf("rotation with restore off dropped the channels: %v", s)
	}
	if len(c.Subscriptions()) != 2 {
		t.Errorf("set %v", c.Subscriptions())
	}
}

// Subscribe on a closed client: ErrClosed, and the (dead) wanted set is not changed.
func TestSubscribeAfterCloseChangesNothing(t *testing.T) {
	v := newVenue(t, false)
	c := connect(t, v)
	ctx := testutil.Context(t, 5*time.Second)
	if err := c.Subscribe(ctx, "k.1"); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if err := c.Subscribe(ctx, "after.1"); !errors.Is(err, actors.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	// Found by review (fixed): a Subscribe on a closed client returns ErrClosed but still
	// adds the channel to the wanted set (Subscriptions() lists it); the
	// docs say the intent is "gone with the client" (and Unsubscribe on a
	// closed client returns nil, see TestCloseWithStuckHandler).
	for _, s := range c.Subscriptions() {
		if s == "after.1" {
			t.Errorf("Subscribe after Close returned ErrClosed yet recorded the channel: %v", c.Subscriptions())
		}
	}
}
