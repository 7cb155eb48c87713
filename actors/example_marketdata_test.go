package actors_test

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/transport/wstest"
)

// A consumer of an order book: it starts from the snapshot, applies the
// changes, and throws its book away on a gap notice; the client puts the
// channel back in sync, and the next message is a fresh snapshot.
func ExampleKindGap() {
	const ch = "book.BTC-PERPETUAL.100ms"
	book := wstest.NewBook(ch, 5*time.Millisecond) // a simulated Deribit book
	defer book.Close()
	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithBook(book))
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	events := make(chan string, 8)
	say := func(s string) {
		select {
		case events <- s:
		default:
		}
	}
	changes := 0
	handle := func(in actors.Inbound) { // runs on the client's delivery goroutine, in order
		switch {
		case in.Kind == actors.KindGap:
			say("gap: " + in.Gap.Reason.String()) // throw the book away
		case in.Snapshot:
			say("snapshot") // start the book from it
			changes = 0
		case in.Channel == ch:
			if changes++; changes == 10 {
				say("10 changes applied")
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, srv.URL(), actors.WithVenue(deribit.Venue{}), actors.WithHandler(handle))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.Subscribe(ctx, ch); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-events)
	fmt.Println(<-events)
	conns, _ := srv.WaitConns(ctx, 1)
	book.Lose(conns[0], 1) // one change never reaches the client
	fmt.Println(<-events)
	fmt.Println(<-events)
	h := c.Health()
	fmt.Println("gaps:", h.SequenceGaps, "resyncs:", h.Resyncs)
	// Output:
	// snapshot
	// 10 changes applied
	// gap: sequence
	// snapshot
	// gaps: 1 resyncs: 1
}

// A channel that may not stay silent for more than a second: past that it
// is subscribed again (a GapStale notice in the stream), and if it stays
// silent after that, the connection is replaced.
func ExampleWithFreshness() {
	cfg, err := actors.NewConfig("wss://www.deribit.com/ws/api/v2",
		actors.WithVenue(deribit.Venue{}),
		actors.WithFreshness("book.*", time.Second),
		actors.WithFreshness("ticker.*", 5*time.Second))
	fmt.Println(len(cfg.Freshness), err)
	// Output: 2 <nil>
}
