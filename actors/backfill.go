package actors

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zenws/zenws/actors/venue"
)

// What a venue's connect work needs to reconcile state after a reconnect
// (Deribit's open orders and trades: package actors/deribit): whether
// something may have been missed (Reconnected, Rotating), what the handler
// has been given so far (Delivered, and a venue.Observer that follows the
// stream), and a way to put what it fetched in the stream (Backfill).

// Reconnected reports whether the client had a connection before this one
// that it lost (Health.Reconnects or Health.Restarts above zero): what the
// venue sent while there was none may have been missed. False on the
// client's first connection (venue.Session).
func (s *Setup) Reconnected() bool {
	return s.d.reconnects.Load() > 0 || s.d.restarts.Load() > 0
}

// Rotating reports whether another connection of the client is live while
// this one is set up: a planned rotation (make-before-break), in which the
// old connection goes on delivering and nothing is missed (venue.Session).
func (s *Setup) Rotating() bool {
	cur := s.d.conn.Load()
	return cur != nil && cur.gen != s.gen
}

// Delivered waits until every message the client accepted for delivery
// before the call has been handed to the handler or subscriber (and seen
// by the venue's venue.Observer), or ctx ends (ctx's error), or the client
// stops (ErrClosed). It queues a marker behind those messages and waits for
// the delivery goroutine to reach it (venue.Session).
func (s *Setup) Delivered(ctx context.Context) error {
	reached := make(chan struct{})
	s.d.in.call(func() { close(reached) })
	select {
	case <-reached:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("zenws: waiting for deliveries: %w", ctx.Err())
	case <-s.d.stopped:
		return ErrClosed
	}
}

// Backfill delivers data, a notification of channel that the venue's
// connect work fetched for what changed while the client had no
// connection, in the client's stream: an Inbound of KindNotification with
// Backfill set and this connection's Generation, queued after every message
// already accepted and, since connect work runs before the subscription
// restore, before this connection's own notifications. The message counts
// against the inbound queue's bounds like any other (venue.Session).
func (s *Setup) Backfill(channel string, data []byte) {
	if len(channel) > maxChannelName {
		channel = channel[:maxChannelName]
	}
	s.d.in.push(&Inbound{Client: s.d.pid, Kind: KindNotification, Data: data, Generation: s.gen,
		Received: time.Now(), Channel: channel, Backfill: true})
}

// observed wraps deliver so that the venue's venue.Observer sees the
// notifications of its channels first; deliver itself when the venue has
// none.
func observed(v venue.Venue, deliver func(*Inbound)) func(*Inbound) {
	o, ok := v.(venue.Observer)
	if !ok || deliver == nil {
		return deliver
	}
	var prefix string
	if guard("venue ObservePrefix", func() error { prefix = o.ObservePrefix(); return nil }) != nil {
		return deliver
	}
	return func(m *Inbound) {
		if m.Kind == KindNotification && strings.HasPrefix(m.Channel, prefix) {
			_ = guard("venue Observe", func() error { o.Observe(m.Channel, m.Data); return nil })
		}
		deliver(m)
	}
}
