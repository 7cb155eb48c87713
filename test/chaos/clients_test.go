package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport"
)

// channelsFor is what client i subscribes to: two public market-data
// channels, one of its own, and a private user channel that the venue only
// grants to an authenticated session (so every restore must come after the
// connect hook's auth).
func channelsFor(i int) []string {
	return []string{
		"book.ETH-PERPETUAL.100ms",
		"ticker.BTC-PERPETUAL.raw",
		fmt.Sprintf("trades.venue%d.raw", i+1),
		"user.orders.BTC-PERPETUAL.raw",
	}
}

// feed is what one client's handler and state observer saw.
type feed struct {
	channels []string       // sorted
	idx      map[string]int // channel -> index in counts; read-only
	counts   []atomic.Int64 // notifications per channel
	unknown  atomic.Int64   // notifications on a channel never subscribed
	notes    atomic.Int64   // all notifications
	acks     atomic.Int64   // server replies to balanced sends (unmatched responses)

	panicEvery int64        // the handler panics on every panicEvery-th notification
	panics     atomic.Int64 // panics it raised

	mu    sync.Mutex
	drops []drop // every lost connection, in order
}

// drop is one lost connection: when, and the class of its cause.
type drop struct {
	at    time.Time
	cause string
}

func newFeed(channels []string, panicEvery int64) *feed {
	f := &feed{
		channels:   slices.Sorted(slices.Values(channels)),
		idx:        make(map[string]int, len(channels)),
		counts:     make([]atomic.Int64, len(channels)),
		panicEvery: panicEvery,
	}
	for i, ch := range f.channels {
		f.idx[ch] = i
	}
	return f
}

// handle is the client's handler. Every panicEvery-th notification it
// panics on purpose: the client must count the panic and stay up.
func (f *feed) handle(in actors.Inbound) {
	switch in.Kind {
	case actors.KindNotification:
		if i, ok := f.idx[in.Channel]; ok {
			f.counts[i].Add(1)
		} else {
			f.unknown.Add(1)
		}
		if n := f.notes.Add(1); f.panicEvery > 0 && n%f.panicEvery == 0 {
			f.panics.Add(1)
			panic(fmt.Sprintf("chaos: injected handler panic #%d", n/f.panicEvery))
		}
	case actors.KindResponse:
		if in.Unmatched {
			f.acks.Add(1)
		}
	}
}

// observe is the client's state observer: it records every lost
// connection with the class of its cause.
func (f *feed) observe(sc actors.StateChange) {
	if sc.To != actors.StateReconnecting || sc.From != actors.StateConnected {
		return
	}
	f.mu.Lock()
	f.drops = append(f.drops, drop{at: time.Now(), cause: causeOf(sc.Err)})
	f.mu.Unlock()
}

// dropsBetween returns the causes of the connections lost in [from, to).
func (f *feed) dropsBetween(from, to time.Time) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.drops {
		if !d.at.Before(from) && d.at.Before(to) {
			out = append(out, d.cause)
		}
	}
	return out
}

// snapshot returns the notification count of every channel.
func (f *feed) snapshot() []int64 {
	out := make([]int64, len(f.counts))
	for i := range f.counts {
		out[i] = f.counts[i].Load()
	}
	return out
}

// grewBy reports whether every channel got at least n notifications since
// the snapshot before.
func (f *feed) grewBy(before []int64, n int64) bool {
	for i := range f.counts {
		if f.counts[i].Load()-before[i] < n {
			return false
		}
	}
	return true
}

// causeOf classifies why a connection was lost.
func causeOf(err error) string {
	var ce *transport.CloseError
	switch {
	case err == nil:
		return "unknown"
	case errors.Is(err, actors.ErrHeartbeatTimeout):
		return "heartbeat"
	case errors.Is(err, transport.ErrWriteTimeout):
		return "write-timeout"
	case errors.As(err, &ce):
		return fmt.Sprintf("close-%d", int(ce.Code))
	default:
		return "dropped"
	}
}

// authHook authenticates every new connection before the client restores
// its subscriptions and reports itself connected, as the Deribit adapter
// does: private/buy and the user.* channels need it.
func authHook(ctx context.Context, s *actors.Setup) error {
	_, err := s.Call(ctx, "public/auth", map[string]string{
		"grant_type":    "client_credentials",
		"client_id":     clientID,
		"client_secret": clientSecret,
	})
	return err
}
