package main

import (
	"fmt"
	"sync"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/venue"
)

// The order books: every client subscribes to bookChannel on its own (a
// single subscription each); the redundant feed holds feedChannel, a book
// of the same venues at the same pace, on two clients at once (a channel
// of its own: a feed moving a copy off a client unsubscribes it there,
// which would take a client's own subscription of the same channel away).
const (
	bookChannel = "book.BTC-PERPETUAL.100ms"
	feedChannel = "book.ETH-PERPETUAL.100ms"
)

// bookCheck is a consumer of an order book stream, as docs/market-data.md
// describes one: it starts from a snapshot, applies each change that names
// the one before, throws its book away on a gap notice. It counts what it
// would have suffered.
type bookCheck struct {
	channel    string
	mu         sync.Mutex
	have       bool
	last       uint64
	seen       map[uint64]bool
	gaps       int
	changes    int
	duplicates int
	broken     []string // changes that did not follow, with no notice before
}

func newBookCheck(channel string) *bookCheck {
	return &bookCheck{channel: channel, seen: map[uint64]bool{}}
}

func (b *bookCheck) handle(in actors.Inbound) {
	if in.Channel != b.channel {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if in.Kind == actors.KindGap {
		b.gaps++
		b.have = false
		return
	}
	d := venue.Path(in.Data, "params", "data")
	id, _ := jsonrpc.Uint(jsonrpc.Field(d, "change_id"))
	prev, _ := jsonrpc.Uint(jsonrpc.Field(d, "prev_change_id"))
	switch {
	case in.Snapshot:
		b.have, b.last = true, id
		return
	case b.seen[id]:
		b.duplicates++
	case !b.have || prev != b.last:
		if len(b.broken) < 5 {
			b.broken = append(b.broken, fmt.Sprintf("change %d after %d", id, b.last))
		}
	}
	if len(b.seen) > 100_000 { // bound it: ids only grow
		clear(b.seen)
	}
	b.seen[id] = true
	b.last = id
	b.changes++
}

// bookFigures is what a consumer of the redundant feed saw.
type bookFigures struct {
	gaps, changes, duplicates int
	broken                    []string
}

func (b *bookCheck) figures() bookFigures {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bookFigures{gaps: b.gaps, changes: b.changes, duplicates: b.duplicates, broken: append([]string(nil), b.broken...)}
}
