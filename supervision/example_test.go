package supervision_test

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

// Pattern 2: a ClientSupervisor that restarts clients within a budget.
func Example() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	sup, err := supervision.Start(sys, supervision.WithRestartBudget(10, time.Minute))
	if err != nil {
		panic(err)
	}
	defer sup.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := sup.StartClient(ctx, srv.URL(),
		actors.WithHeartbeat(actors.HeartbeatPingPong, 15*time.Second),
		actors.WithRetryCount(5))
	if err != nil {
		panic(err) // the first connect failed; no child is left behind
	}
	fmt.Println(client.State(), len(sup.ListClients()))

	_ = sup.StopClient(client.PID()) // graceful, never restarted
	fmt.Println(client.State(), len(sup.ListClients()))
	// Output:
	// connected 1
	// disconnected 0
}

// Lifecycle callbacks run after every connection (restarts included) and
// when the client stops for good, e.g. to join and leave a registry.
func ExampleSupervisor_StartClient() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	sup, _ := supervision.Start(sys)
	defer sup.Stop()

	joined := make(chan *actor.PID, 1)
	left := make(chan *actor.PID, 1)
	client, err := sup.StartClient(context.Background(), srv.URL(),
		actors.WithOnConnect(func(pid *actor.PID) { joined <- pid }),
		actors.WithOnDisconnect(func(pid *actor.PID) { left <- pid }))
	if err != nil {
		panic(err)
	}
	fmt.Println("joined:", (<-joined).Equal(client.PID()))
	_ = sup.StopClient(client.PID())
	fmt.Println("left:", (<-left).Equal(client.PID()))
	// Output:
	// joined: true
	// left: true
}

// Watching supervision without callbacks: typed events on the event stream.
// Subscribers run on the publisher's goroutine: keep them quick.
func Example_events() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	restarted := make(chan *supervision.ClientRestarted, 10)
	sub := sys.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*supervision.ClientRestarted); ok {
			restarted <- e // hand off, never block here
		}
	})
	defer sys.EventStream.Unsubscribe(sub)

	sup, _ := supervision.Start(sys)
	defer sup.Stop()
	client, err := sup.StartClient(context.Background(), srv.URL(),
		actors.WithRetryCount(0), actors.WithRetryDelay(10*time.Millisecond))
	if err != nil {
		panic(err)
	}
	srv.WaitConns(context.Background(), 1)
	srv.DropAll() // with RetryCount 0 the client gives up at once

	e := <-restarted
	fmt.Println(e.Client.Equal(client.PID()), e.Restarts)
	// Output: true 1
}

// appSupervisor is your own application actor that embeds a
// ClientSupervisor in its tree.
type appSupervisor struct{ ready chan *actor.PID }

func (a *appSupervisor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		a.ready <- ctx.Spawn(supervision.Props(supervision.WithRestartBudget(5, time.Minute)))
	}
}

// Embedding the ClientSupervisor under your own actor.
func ExampleProps() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	app := &appSupervisor{ready: make(chan *actor.PID, 1)}
	appPID := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return app }))
	defer func() { _ = sys.Root.StopFuture(appPID).Wait() }()

	sup := supervision.NewSupervisor(sys, <-app.ready)
	for sup.ListClients() == nil { // until the embedded supervisor has started
		time.Sleep(time.Millisecond)
	}
	client, err := sup.StartClient(context.Background(), srv.URL())
	if err != nil {
		panic(err)
	}
	fmt.Println(client.State())
	// Output: connected
}

// venueOwner is your own actor supervising a client directly (pattern 3).
type venueOwner struct {
	cfg    actors.Config
	client chan *actors.Client
}

func (v *venueOwner) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		c, err := actors.Spawn(ctx, v.cfg) // a child of this actor
		if err != nil {
			panic(err)
		}
		v.client <- c
	}
}

// Pattern 3: your own parent actor supervising client actors, with this
// package's strategy (or any of your own).
func ExampleNewStrategy() {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	cfg, err := actors.NewConfig(srv.URL(), actors.WithRetryCount(3))
	if err != nil {
		panic(err)
	}
	owner := &venueOwner{cfg: cfg, client: make(chan *actors.Client, 1)}
	props := actor.PropsFromProducer(func() actor.Actor { return owner },
		actor.WithSupervisor(supervision.NewStrategy(supervision.WithRestartBudget(10, time.Minute))))
	ownerPID := sys.Root.Spawn(props)
	defer func() { _ = sys.Root.StopFuture(ownerPID).Wait() }()

	client := <-owner.client
	if err := client.WaitConnected(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(client.State())
	// Output: connected
}
