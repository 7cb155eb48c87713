package wstest

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"
)

// Book is a Deribit-like order book feed for the simulator: a subscribe to
// its channel answers with a snapshot ({"type":"snapshot","change_id":N,...},
// sent before the subscribe's answer), and every Every a change
// ({"type":"change","change_id":N+1,"prev_change_id":N,...}) goes to every
// connection subscribed to it, on every server the Book was given to
// (WithBook): connections to several servers see one feed, as connections
// to one venue do. Each message carries "ts", the Unix nanoseconds it was
// published at, for delivery latency. Lose and Mute inject the faults a
// feed has on one connection. Close stops it.
type Book struct {
	channel string

	// pub orders a subscribe's snapshot and a round of changes: without it
	// a change could overtake the snapshot it follows.
	pub     sync.Mutex
	mu      sync.Mutex
	id      uint64
	servers []*Server
	lose    map[*Conn]int
	muted   map[*Conn]bool
	sent    int64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewBook starts a book on channel (a Deribit book name such as
// "book.BTC-PERPETUAL.100ms") with a change every every (at least 1 ms).
func NewBook(channel string, every time.Duration) *Book {
	b := &Book{channel: channel, id: 1, lose: map[*Conn]int{}, muted: map[*Conn]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run(max(every, time.Millisecond))
	return b
}

// WithBook serves books on the server: public/subscribe (Deribit's, see
// WithDeribit) sends a book's snapshot to a connection that subscribes to
// its channel, and the periodic notifications of WithDeribitTicker leave
// the books' channels to them. (It answers public/subscribe itself: give
// every book of a server in one WithBook.)
func WithBook(books ...*Book) Option {
	respond := WithResponder("public/subscribe", func(c *Conn, params json.RawMessage) (any, *RPCError) {
		got, rpcErr := deribitSubscribe(c, params)
		if rpcErr != nil {
			return got, rpcErr
		}
		chans, _ := got.([]string)
		for _, b := range books {
			if slices.Contains(chans, b.channel) {
				b.subscribed(c)
			}
		}
		return got, nil
	})
	return func(c *config) {
		respond(c)
		for _, b := range books {
			c.bookChannels = append(c.bookChannels, b.channel)
		}
	}
}

// Channel is the book's channel.
func (b *Book) Channel() string { return b.channel }

// ChangeID is the latest change's id.
func (b *Book) ChangeID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id
}

// Sent counts the messages the book wrote, snapshots included.
func (b *Book) Sent() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent
}

// Lose makes c miss the next n changes (messages lost on the way).
func (b *Book) Lose(c *Conn, n int) {
	b.mu.Lock()
	b.lose[c] += n
	b.mu.Unlock()
}

// Mute stalls the book on c (on: no change and no snapshot reaches it, while
// the connection itself keeps answering), or lets it flow again.
func (b *Book) Mute(c *Conn, on bool) {
	b.mu.Lock()
	if on {
		b.muted[c] = true
	} else {
		delete(b.muted, c)
	}
	b.mu.Unlock()
}

// Close stops the book's changes; safe to call more than once.
func (b *Book) Close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

func (b *Book) subscribed(c *Conn) {
	b.pub.Lock()
	defer b.pub.Unlock()
	b.mu.Lock()
	if !slices.Contains(b.servers, c.s) {
		b.servers = append(b.servers, c.s)
	}
	id, muted := b.id, b.muted[c]
	if !muted {
		b.sent++
	}
	b.mu.Unlock()
	if !muted {
		_ = c.Publish(context.Background(), b.channel, b.message("snapshot", id))
	}
}

func (b *Book) message(typ string, id uint64) map[string]any {
	m := map[string]any{"type": typ, "change_id": id, "timestamp": time.Now().UnixMilli(), "ts": time.Now().UnixNano(),
		"bids": [][]any{{"change", 100 + id%7, 1}}, "asks": [][]any{}}
	if typ == "change" {
		m["prev_change_id"] = id - 1
	}
	return m
}

func (b *Book) run(every time.Duration) {
	defer close(b.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
		b.round()
	}
}

// round publishes the next change.
func (b *Book) round() {
	b.pub.Lock()
	defer b.pub.Unlock()
	b.mu.Lock()
	b.id++
	id, servers := b.id, slices.Clone(b.servers)
	b.mu.Unlock()
	msg := b.message("change", id)
	for _, s := range servers {
		for _, c := range s.Conns() {
			if !c.Subscribed(b.channel) || !b.reaches(c) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if c.Publish(ctx, b.channel, msg) == nil {
				b.mu.Lock()
				b.sent++
				b.mu.Unlock()
			}
			cancel()
		}
	}
	b.forgetClosed()
}

// reaches reports whether the next change goes to c (and counts a loss).
func (b *Book) reaches(c *Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.muted[c] {
		return false
	}
	if b.lose[c] > 0 {
		b.lose[c]--
		return false
	}
	return true
}

// forgetClosed drops the fault marks of connections that have ended.
func (b *Book) forgetClosed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.lose {
		if c.ctx.Err() != nil {
			delete(b.lose, c)
		}
	}
	for c := range b.muted {
		if c.ctx.Err() != nil {
			delete(b.muted, c)
		}
	}
}
