package supervision_test

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

// venueParent is a user's own actor that owns a client (pattern 3).
type venueParent struct {
	cfg    actors.Config
	client chan *actors.Client
}

func (p *venueParent) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		c, err := actors.Spawn(ctx, p.cfg)
		if err != nil {
			panic(err)
		}
		p.client <- c
	}
}

func TestPattern3OwnParentWithStrategy(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	cfg, err := actors.NewConfig(srv.URL(), fast()...)
	if err != nil {
		t.Fatal(err)
	}
	p := &venueParent{cfg: cfg, client: make(chan *actors.Client, 1)}
	props := actor.PropsFromProducer(func() actor.Actor { return p },
		actor.WithSupervisor(supervision.NewStrategy(supervision.WithRestartBudget(1, time.Minute))))
	ppid := sys.Root.Spawn(props)
	defer func() { _ = sys.Root.StopFuture(ppid).Wait() }()
	c := <-p.client
	if err := c.WaitConnected(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	drop(t, srv, 1)
	eventually(t, 5*time.Second, "restart under the user's parent", func() bool {
		return c.Health().Restarts == 1 && c.State() == actors.StateConnected
	})
	drop(t, srv, 1)
	eventually(t, 5*time.Second, "stopped past the budget", func() bool { return c.State() == actors.StateDisconnected })
	if count[*supervision.ClientRestarted](ev) != 1 || count[*supervision.ClientGaveUp](ev) != 1 {
		t.Fatalf("events: %d restarted, %d gave up", count[*supervision.ClientRestarted](ev), count[*supervision.ClientGaveUp](ev))
	}
}

// appRoot is a user's application actor that embeds a ClientSupervisor.
type appRoot struct{ sup chan *actor.PID }

func (a *appRoot) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		a.sup <- ctx.Spawn(supervision.Props(supervision.WithRestartBudget(5, time.Minute)))
	}
}

func TestEmbeddedSupervisorWithProps(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	app := &appRoot{sup: make(chan *actor.PID, 1)}
	apid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return app }))
	s := supervision.NewSupervisor(sys, <-app.sup)
	var c *actors.Client
	eventually(t, 5*time.Second, "the embedded supervisor to start a client", func() bool {
		var err error
		c, err = s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...)
		return err == nil || !errors.Is(err, supervision.ErrNotFound)
	})
	if c == nil || c.State() != actors.StateConnected {
		t.Fatal("no connected client from the embedded supervisor")
	}
	drop(t, srv, 1)
	eventually(t, 5*time.Second, "restart", func() bool { return c.Health().Restarts == 1 && c.State() == actors.StateConnected })
	// Stopping the user's tree stops the supervisor and its clients.
	if err := sys.Root.StopFuture(apid).Wait(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "client stopped with the tree", func() bool { return c.State() == actors.StateDisconnected })
	if err := c.Wait(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}
