package supervision_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

func TestStopWhileClientsFailLeavesNoConnection(t *testing.T) {
	for round := 0; round < 15; round++ {
		srv := wstest.NewServer()
		sys := newSystem(t)
		s, err := supervision.Start(sys)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if _, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...); err != nil {
				t.Fatal(err)
			}
		}
		drop(t, srv, 20) // every client fails at once (RetryCount 0)...
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		if err := s.Stop(); err != nil { // ...while the supervisor stops
			t.Fatal(err)
		}
		// A connection the server lists a moment late may still show up;
		// what must not exist is one left open (a restarted zombie's).
		time.Sleep(200 * time.Millisecond)
		if open := srv.ConnCount(); open != 0 {
			t.Fatalf("round %d: %d connections still open after Stop returned", round, open)
		}
		srv.Close()
	}
}

func TestPanickingEventSubscriberCannotTakeSupervisionDown(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	sub := sys.EventStream.Subscribe(func(evt any) {
		if _, ok := evt.(*supervision.ClientRestarted); ok {
			panic("subscriber bug")
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	s := start(t, sys)
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...)
	if err != nil {
		t.Fatal(err)
	}
	drop(t, srv, 1)
	eventually(t, 5*time.Second, "the restart despite the panicking subscriber", func() bool {
		return c.Health().Restarts == 1 && c.State() == actors.StateConnected
	})
	if _, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL()); err != nil {
		t.Fatalf("the supervisor is gone: %v", err)
	}
}

func TestDisconnectReasonAndConnectedGenerations(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys)
	release := make(chan struct{})
	var once sync.Once
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(),
		actors.WithRetryDelay(10*time.Millisecond),
		actors.WithOnConnect(func(*actor.PID) { <-release })) // a slow callback
	if err != nil {
		t.Fatal(err)
	}
	defer once.Do(func() { close(release) })
	for gen := uint64(2); gen <= 3; gen++ {
		drop(t, srv, 1)
		eventually(t, 5*time.Second, "reconnect", func() bool { return c.Health().Generation == gen && c.State() == actors.StateConnected })
	}
	once.Do(func() { close(release) })
	eventually(t, 2*time.Second, "three ClientConnected", func() bool { return count[*supervision.ClientConnected](ev) == 3 })
	ev.mu.Lock()
	var gens []uint64
	for _, e := range ev.all {
		if cc, ok := e.(*supervision.ClientConnected); ok {
			gens = append(gens, cc.Generation)
		}
	}
	ev.mu.Unlock()
	if len(gens) != 3 || gens[0] != 1 || gens[1] != 2 || gens[2] != 3 {
		t.Fatalf("ClientConnected generations %v, want [1 2 3]", gens)
	}
	if err := s.StopClient(c.PID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "ClientDisconnected", func() bool { return count[*supervision.ClientDisconnected](ev) == 1 })
	if d := first[*supervision.ClientDisconnected](ev); d.Reason != nil {
		t.Fatalf("a clean StopClient reported reason %v", d.Reason)
	}
}

// crashy is a non-zenws child that panics when told to.
type crashy struct{}

func (crashy) Receive(ctx actor.Context) {
	if ctx.Message() == "crash" {
		panic("crash")
	}
}

type crashyParent struct{ child chan *actor.PID }

func (p *crashyParent) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		p.child <- ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return crashy{} }))
	}
}

func TestNewStrategyRestartsOtherChildrenWithinBudget(t *testing.T) {
	sys := newSystem(t)
	ev := watch(t, sys)
	p := &crashyParent{child: make(chan *actor.PID, 1)}
	ppid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p },
		actor.WithSupervisor(supervision.NewStrategy(supervision.WithRestartBudget(2, time.Minute)))))
	defer func() { _ = sys.Root.StopFuture(ppid).Wait() }()
	child := <-p.child
	sys.Root.Send(child, "crash")
	eventually(t, 2*time.Second, "a restart of a non-client child", func() bool { return count[*supervision.ClientRestarted](ev) == 1 })
	sys.Root.Send(child, "crash")
	sys.Root.Send(child, "crash")
	eventually(t, 2*time.Second, "the budget to stop it", func() bool { return count[*supervision.ClientGaveUp](ev) == 1 })
}

func TestInvalidBudgetIsAnError(t *testing.T) {
	sys := newSystem(t)
	for _, opt := range []supervision.Option{
		supervision.WithRestartBudget(-1, time.Minute),
		supervision.WithRestartBudget(3, 0),
		supervision.WithSupervisorIntensity(2, 0),
		supervision.WithStopWait(0),
		// A nanosecond window is an unlimited budget (issue 12 item 17).
		supervision.WithRestartBudget(1, time.Nanosecond),
		supervision.WithSupervisorIntensity(1, time.Nanosecond),
	} {
		_, err := supervision.Start(sys, opt)
		var ce *actors.ConfigError
		if !errors.As(err, &ce) || !errors.As(err, new(*actors.ConfigError)) {
			t.Errorf("Start accepted an invalid option, or not as a *ConfigError: %v", err)
		}
	}
	var nilSys *actor.ActorSystem
	if _, err := supervision.Start(nilSys); err == nil || errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("Start(nil) = %v", err)
	}
}
