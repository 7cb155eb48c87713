package okx_test

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
	"github.com/zenws/zenws/transport/wstest"
)

// A client of OKX's private endpoint: it logs in on every connection
// before it restores its subscriptions. Here against the simulator; use
// okx.Private for the real one.
func Example() {
	srv := wstest.NewServer(wstest.WithOKXCredentials("my-key", "my-secret", "my-passphrase"))
	defer srv.Close()
	venue, err := okx.New(okx.Config{APIKey: "my-key", SecretKey: "my-secret", Passphrase: "my-passphrase"})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(nil))
	defer sys.Shutdown()
	c, err := actors.Connect(ctx, sys, srv.URL(), actors.WithVenue(venue))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "tickers:BTC-USDT", "orders"); err != nil {
		panic(err)
	}
	for _, ch := range c.Health().Channels {
		fmt.Println(ch.Channel, ch.State)
	}
	fmt.Println("heartbeat:", c.Health().Heartbeat)
	// Output:
	// orders active
	// tickers:BTC-USDT active
	// heartbeat: text
}
