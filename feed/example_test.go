package feed_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	vbinance "github.com/zenws/zenws/actors/venue/binance"
	vderibit "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/transport/wstest"
)

// A redundant feed: one channel on two clients, each update delivered
// once.
func Example() {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()

	var mu sync.Mutex
	var clients []*actor.PID
	got := make(chan actors.Inbound, 16)
	p, err := feed.New(sys,
		feed.WithDiscovery(func() []*actor.PID { mu.Lock(); defer mu.Unlock(); return clients }), // a supervisor's ListClients
		feed.WithCopies(2),
		feed.WithVenue(vderibit.Venue{}), // book.* de-duplicated by change_id, others by content
		feed.WithHandler(func(in actors.Inbound) { got <- in }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Stop()
	for range 2 {
		c, err := actors.Connect(ctx, sys, srv.URL(), actors.WithVenue(vderibit.Venue{}),
			actors.WithSubscriber(p.PID())) // the clients deliver to the pool
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		mu.Lock()
		clients = append(clients, c.PID())
		mu.Unlock()
	}
	_ = p.Refresh(ctx)
	if err := p.Subscribe(ctx, "ticker.BTC-PERPETUAL.raw"); err != nil {
		fmt.Println(err)
		return
	}
	srv.Publish("ticker.BTC-PERPETUAL.raw", map[string]int{"last_price": 97000}) // to each connection subscribed
	in := <-got
	st, _ := p.Status(ctx)
	cs, _ := st.Channel("ticker.BTC-PERPETUAL.raw")
	fmt.Println(in.Channel, "on", cs.Copies, "clients, delivered", cs.Delivered)
	// Output:
	// ticker.BTC-PERPETUAL.raw on 2 clients, delivered 1
}

// Sharding: channels spread over a pool within each connection's stream
// limit (Binance's 1,024; 2 here), and a typed error for what does not fit.
func ExamplePool_Subscribe_sharding() {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := wstest.NewServer(wstest.WithBinance())
	defer srv.Close()

	var mu sync.Mutex
	var clients []*actor.PID
	p, err := feed.New(sys, feed.WithDiscovery(func() []*actor.PID { mu.Lock(); defer mu.Unlock(); return clients }),
		feed.WithCopies(1), feed.WithVenue(vbinance.Venue{}), feed.WithMaxStreams(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Stop()
	for range 3 {
		c, err := actors.Connect(ctx, sys, srv.URL(), actors.WithVenue(vbinance.Venue{}), actors.WithSubscriber(p.PID()))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		mu.Lock()
		clients = append(clients, c.PID())
		mu.Unlock()
	}
	_ = p.Refresh(ctx)
	err = p.Subscribe(ctx, "a@trade", "b@trade", "c@trade", "d@trade", "e@trade", "f@trade", "g@trade")
	var capErr *feed.CapacityError
	if errors.As(err, &capErr) {
		fmt.Println("not placed:", capErr.NotPlaced, "capacity", capErr.Capacity)
	}
	st, _ := p.Status(ctx)
	for _, c := range st.Clients {
		fmt.Println(c.Streams, "streams") // c.Channels names them
	}
	// Output:
	// not placed: [g@trade] capacity 6
	// 2 streams
	// 2 streams
	// 2 streams
}
