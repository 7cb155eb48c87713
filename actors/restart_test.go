package actors_test

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

func TestGiveUpUnderParentRestartsWithSamePIDAndState(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	box := newInbox()
	cfg, err := actors.NewConfig(srv.URL(), fast(actors.WithRetryCount(1), actors.WithHandler(box.handle))...)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []any
	reasonCh := make(chan any, 10)
	strategy := actor.NewOneForOneStrategy(10, time.Minute, func(reason any) actor.Directive {
		reasonCh <- reason
		return actor.RestartDirective
	})
	p := &parent{cfg: cfg, child: make(chan *actor.PID, 1)}
	ppid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }, actor.WithSupervisor(strategy)))
	defer func() { _ = sys.Root.StopFuture(ppid).Wait() }()
	pid := <-p.child
	c := actors.NewClient(sys, pid)
	eventually(t, 5*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })

	// The server refuses for a while: the client spends its one retry,
	// gives up with a typed reason, and its parent restarts it.
	srv.RefuseHandshakes(503)
	waitServerConn(t, srv)
	srv.DropAll()
	select {
	case r := <-reasonCh:
		reasons = append(reasons, r)
	case <-time.After(5 * time.Second):
		t.Fatal("the client never failed to its parent")
	}
	var gu *actors.GiveUpError
	if err, ok := reasons[0].(error); !ok || !errors.As(err, &gu) {
		t.Fatalf("failure reason %T %v, want *GiveUpError", reasons[0], reasons[0])
	}
	srv.RefuseHandshakes(0)
	eventually(t, 5*time.Second, "reconnected after the restart", func() bool {
		h := c.Health()
		return h.State == actors.StateConnected && h.Restarts >= 1
	})
	h := c.Health()
	if !c.PID().Equal(pid) || h.Generation != 2 || h.Reconnects != 1 {
		t.Fatalf("after restart: %+v", h)
	}
	// The handler, its queue and Seq survived the restart.
	if err := c.Send(ctxT(t, time.Second), []byte("after restart")); err != nil {
		t.Fatal(err)
	}
	if in := box.next(t); string(in.Data) != "after restart" || in.Generation != 2 || in.Seq != 1 {
		t.Fatalf("after restart got %+v", in)
	}
}

func TestFatalUnderParentStopsWithoutFailure(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	cfg, _ := actors.NewConfig(srv.URL(), fast()...)
	failures := make(chan any, 10)
	strategy := actor.NewOneForOneStrategy(10, time.Minute, func(reason any) actor.Directive {
		failures <- reason
		return actor.RestartDirective
	})
	p := &parent{cfg: cfg, child: make(chan *actor.PID, 1)}
	ppid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }, actor.WithSupervisor(strategy)))
	defer func() { _ = sys.Root.StopFuture(ppid).Wait() }()
	c := actors.NewClient(sys, <-p.child)
	eventually(t, 5*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })
	srv.RefuseHandshakes(403)
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "stopped", func() bool { return c.State() == actors.StateDisconnected })
	select {
	case r := <-failures:
		t.Fatalf("a fatal error was reported as a failure (burns restart budget): %v", r)
	case <-time.After(100 * time.Millisecond):
	}
}
