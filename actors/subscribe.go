package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/internal/redact"
)

// The subscription types are the venue package's (actors/venue), so that a
// venue package can implement a Dialect without importing the client.

// Subscribe adds channels to the client's wanted set at once, whatever
// the connection state, and waits until the venue has answered for each
// of them on the live connection (the dialect's requests, in order), or
// ctx ends, or RequestTimeout passes, whichever is first. The channels stay
// wanted until Unsubscribe: the client subscribes them on every new
// connection (when RestoreSubscriptions is on, the default) and asks again,
// with backoff, for a channel the venue refused (Health.Channels shows
// each channel's state, error and next retry).
//
// It returns nil when every channel is active; a *PartialError naming
// what was and was not applied when the venue applied only some (a
// mistyped channel); an error wrapping the cause (a *RPCError for a
// JSON-RPC error) and naming the channels when none was applied; an error
// wrapping ErrTimeout and the context's cause (context.DeadlineExceeded or
// context.Canceled, the latter without ErrTimeout) when the wait ended
// first, for instance while the client is reconnecting: the intent is kept
// either way. Channel names have 1 to 1024 bytes; a client wants at most
// 65,536 channels (ErrInvalidRequest beyond).
func (c *Client) Subscribe(ctx context.Context, channels ...string) error {
	return c.subscription(ctx, venue.OpSubscribe, channels)
}

// Unsubscribe removes channels from the wanted set at once and waits until
// the venue has confirmed their removal on the live connection (nothing to
// wait for while disconnected: no new connection subscribes them), or the
// wait ends as for Subscribe. An unsubscribe the venue refuses is asked
// again with backoff, and the error says so; the channels are not wanted
// any more either way.
func (c *Client) Unsubscribe(ctx context.Context, channels ...string) error {
	return c.subscription(ctx, venue.OpUnsubscribe, channels)
}

// Subscriptions returns the wanted set, sorted: what the client subscribes
// on every connection (Health.Channels says which are active).
func (c *Client) Subscriptions() []string {
	d := c.durable()
	if d == nil {
		return nil
	}
	return d.intent.list()
}

func (c *Client) subscription(ctx context.Context, op venue.SubscriptionOp, channels []string) error {
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	if err := d.notSent(ctx); err != nil {
		return err // an ended ctx changes nothing
	}
	if d.closing.Load() || d.isStopped() {
		return ErrClosed // the intent is gone with the client: nothing changes
	}
	if err := checkChannels(channels); err != nil {
		return err
	}
	channels = dedupe(channels)
	if op == venue.OpSubscribe {
		if err := d.intent.want(channels); err != nil {
			return err
		}
	} else {
		d.intent.unwant(channels)
	}
	return d.awaitIntent(ctx, op, channels)
}

// awaitIntent waits for the outcome of a Subscribe or Unsubscribe of
// channels on the live connection and builds its error.
func (d *durable) awaitIntent(ctx context.Context, op venue.SubscriptionOp, channels []string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	s := d.intent
	var applied, notApplied []string
	var cause error
	outcome := func() bool { // with s.mu held
		applied, notApplied, cause = applied[:0], notApplied[:0], nil
		p := s.primary
		for _, ch := range channels {
			switch {
			case op == venue.OpSubscribe && s.wanted[ch] == nil, op == venue.OpUnsubscribe && s.wanted[ch] != nil:
				// Changed again meanwhile by another call: not this call's to wait for.
			case p == nil:
				if op == venue.OpSubscribe {
					return false // no live connection yet
				}
				applied = append(applied, ch) // nothing subscribes it any more
			case p.inflight[ch]:
				return false
			case op == venue.OpSubscribe && p.applied[ch], op == venue.OpUnsubscribe && !p.applied[ch]:
				applied = append(applied, ch)
			case p.failed[ch] != nil:
				notApplied = append(notApplied, ch)
				if cause == nil {
					cause = p.failed[ch].err
				}
			default:
				return false // not asked for yet
			}
		}
		return true
	}
	if err := s.waitFor(ctx, d.stopped, outcome); err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		s.mu.Lock()
		outcome()
		answered := make(map[string]bool, len(applied)+len(notApplied))
		for _, ch := range applied {
			answered[ch] = true
		}
		for _, ch := range notApplied {
			answered[ch] = true
		}
		var waiting []string
		for _, ch := range channels {
			if !answered[ch] {
				waiting = append(waiting, ch)
			}
		}
		connected := s.primary != nil && !s.primary.setup
		s.mu.Unlock()
		why := "the venue has not answered"
		if !connected {
			why = "not connected"
		}
		cause := context.Cause(ctx)
		if errors.Is(cause, context.Canceled) {
			return d.scrub(fmt.Errorf("zenws: %s cancelled after %v, %s for %s (still %s): %w", op, time.Since(start).Round(time.Millisecond),
				why, channelList(waiting), stillWhat(op), cause))
		}
		return d.scrub(fmt.Errorf("zenws: %s: %s for %s after %v (request timeout %v; still %s): %w: %w", op, why, channelList(waiting),
			time.Since(start).Round(time.Millisecond), d.cfg.RequestTimeout, stillWhat(op), ErrTimeout, cause))
	}
	return d.subscriptionOutcome(op, slices.Clone(applied), slices.Clone(notApplied), cause)
}

// dedupe returns channels without repeats, in their first order.
func dedupe(channels []string) []string {
	seen := make(map[string]bool, len(channels))
	out := make([]string, 0, len(channels))
	for _, ch := range channels {
		if !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	return out
}

func stillWhat(op venue.SubscriptionOp) string {
	if op == venue.OpSubscribe {
		return "wanted, applied when the venue confirms"
	}
	return "not wanted, removed when the venue confirms"
}

// onlyAsked keeps the channels of a confirmation that its request named,
// each once: a venue's confirmation is not trusted beyond what was asked, so
// a channel it adds never joins the set (nor any restore), and an
// unsubscribe it confirms for another channel removes nothing. What it
// added is counted (Health.ConfirmationsIgnored) and logged.
func (d *durable) onlyAsked(r venue.SubscriptionRequest, confirmed []string) []string {
	asked := make(map[string]bool, len(r.Channels))
	for _, ch := range r.Channels {
		asked[ch] = false
	}
	kept, extra := make([]string, 0, min(len(confirmed), len(r.Channels))), 0
	for _, ch := range confirmed {
		seen, ok := asked[ch]
		switch {
		case !ok:
			extra++
		case !seen:
			asked[ch] = true
			kept = append(kept, ch)
		}
	}
	if extra > 0 {
		d.rareCounts().unasked.Add(uint64(extra))
		d.log.Warn("the venue confirmed channels the request did not name: ignored",
			zap.String("method", r.Method), zap.Int("asked", len(r.Channels)), zap.Int("not_asked", extra))
	}
	return kept
}

// PartialError is a Subscribe or Unsubscribe that the venue applied only
// in part: Applied are confirmed on the live connection, NotApplied are
// not (refused, or the venue answered without them; they stay as wanted and
// are asked again with backoff), Err is the first cause.
//
// Unwrap gives the cause, except when the cause promises that nothing was
// sent (ErrRateLimited, ErrNotConnected): something was, so a PartialError
// never matches those.
type PartialError struct {
	Applied    []string
	NotApplied []string
	Err        error

	secrets *redact.Scrubber // the client's: Error() hides them
}

// Error implements the error interface: at most 10 channels of each list
// are named, and the client's secrets (a listen key as a channel) are
// redacted.
func (e *PartialError) Error() string {
	s := fmt.Sprintf("zenws: partly applied: applied %s, not applied %s: %v", channelList(e.Applied), channelList(e.NotApplied), e.Err)
	if e.secrets != nil {
		return e.secrets.String(s)
	}
	return s
}

// Unwrap returns the cause, unless it claims that nothing was sent.
func (e *PartialError) Unwrap() error {
	if errors.Is(e.Err, ErrRateLimited) || errors.Is(e.Err, ErrNotConnected) {
		return nil
	}
	return e.Err
}
