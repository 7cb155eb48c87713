package deribit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/transport/wstest"
)

// A client authenticated with client_signature, paced by the account's
// credit limiter, subscribed to a private channel: after a reconnect it is
// authenticated and subscribed again before it reports itself connected.
func Example() {
	srv := wstest.NewServer(wstest.WithDeribitCredentials("my-id", "my-secret")) // use deribit.Testnet for real
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	account := ratelimit.Deribit(ratelimit.DeribitTier4) // share it between the account's clients
	c, session, err := deribit.Connect(ctx, sys, srv.URL(),
		deribit.Config{ClientID: "my-id", ClientSecret: "my-secret", Grant: deribit.ClientSignature},
		actors.WithRateLimiter(account, actors.RateWait),
		actors.WithRetryDelay(50*time.Millisecond))
	if err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer c.Close()
	defer session.Close()

	_ = c.Subscribe(ctx, "user.orders.BTC-PERPETUAL.raw")
	srv.WaitConns(ctx, 1)
	srv.DropAll()
	for (c.Health().Generation < 2 || c.State() != actors.StateConnected) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	conns, _ := srv.WaitConns(ctx, 1)
	fmt.Println("authenticated:", conns[0].Authenticated(), "subscribed:", conns[0].Subscribed("user.orders.BTC-PERPETUAL.raw"))
	fmt.Println("auths:", session.Stats().Auths)
	// Output:
	// authenticated: true subscribed: true
	// auths: 2
}
