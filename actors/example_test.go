package actors_test

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// A client connects, sends, receives, survives a forced disconnect and is
// back in StateConnected after the backoff.
func Example() {
	srv := wstest.NewServer() // an echo server on 127.0.0.1
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	got := make(chan actors.Inbound, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, srv.URL(),
		actors.WithHandler(func(in actors.Inbound) { got <- in }),
		actors.WithRetryDelay(50*time.Millisecond))
	if err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer c.Close()

	_ = c.Send(ctx, []byte("hello"))
	in := <-got
	fmt.Printf("%s %s (generation %d)\n", in.Kind, in.Data, in.Generation)

	srv.WaitConns(ctx, 1)
	srv.DropAll() // the server cuts every connection
	for c.Health().Generation < 2 || c.State() != actors.StateConnected {
		time.Sleep(10 * time.Millisecond)
	}
	_ = c.Send(ctx, []byte("hello again"))
	in = <-got
	fmt.Printf("%s %s (generation %d)\n", in.Kind, in.Data, in.Generation)
	fmt.Println(c.State(), "reconnects:", c.Health().Reconnects)
	// Output:
	// text hello (generation 1)
	// text hello again (generation 2)
	// connected reconnects: 1
}

// Heartbeats prove the connection alive; Health reports the round trips.
func ExampleWithHeartbeat() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	c, err := actors.Connect(context.Background(), sys, srv.URL(),
		actors.WithHeartbeat(actors.HeartbeatPingPong, 20*time.Millisecond),
		func(c *actors.Config) { c.HeartbeatMisses = 3 }) // no option of its own: default 2
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for c.Health().RTTSamples < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	h := c.Health()
	fmt.Println(h.Heartbeat, h.State, h.RTTP50 > 0)
	// Output: ping_pong connected true
}

// A client embedded under your own parent actor, with a handle from
// NewClient.
func ExampleProps() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	cfg, err := actors.NewConfig(srv.URL())
	if err != nil {
		fmt.Println(err)
		return
	}
	pid := sys.Root.Spawn(actors.Props(cfg)) // or ctx.Spawn inside your parent
	c := actors.NewClient(sys, pid)
	for c.State() != actors.StateConnected {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(c.State())
	_ = c.Close()
	fmt.Println(c.State())
	// Output:
	// connected
	// disconnected
}

// Config errors name the field.
func ExampleNewConfig() {
	_, err := actors.NewConfig("http://example.com", actors.WithMaxBackoff(time.Millisecond))
	fmt.Println(err)
	// Output:
	// zenws: invalid config: URL: transport: bad URL: scheme "http" (want ws or wss)
	// zenws: invalid config: MaxBackoff: must be >= RetryDelay (1s), got 1ms
}

// A setting without an option of its own (docs/client.md, "Settings
// without an option") is a Config field: set it with an option literal,
// or on the Config NewConfig returns before Spawn.
func ExampleConfig() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// An option literal, beside the options that have a name.
	c, err := actors.Connect(ctx, sys, srv.URL(),
		actors.WithRetryCount(5),
		func(c *actors.Config) { c.WriteTimeout, c.CloseWait = 2*time.Second, time.Second })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.State())
	_ = c.Close()

	// The Config route: build, edit, spawn. Spawn validates again.
	cfg, err := actors.NewConfig(srv.URL(), actors.WithRetryCount(5))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.StableAfter = 0
	if _, err := actors.Spawn(sys.Root, cfg); err != nil {
		fmt.Println(err)
	}
	cfg.StableAfter = 30 * time.Second
	c, err = actors.Spawn(sys.Root, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.WaitConnected(ctx), c.State())
	// Output:
	// connected
	// zenws: invalid config: StableAfter: must be at least 10ms, got 0s
	// <nil> connected
}
