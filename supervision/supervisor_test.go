package supervision_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

func TestStartListStopClient(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys)
	var disconnected atomic.Int32
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), actors.WithOnDisconnect(func(*actor.PID) { disconnected.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	if c.State() != actors.StateConnected {
		t.Fatalf("StartClient returned a client in %v", c.State())
	}
	if l := s.ListClients(); len(l) != 1 || !l[0].Equal(c.PID()) {
		t.Fatalf("ListClients = %v", l)
	}
	if err := c.Send(ctxT(t, time.Second), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "ClientConnected", func() bool { return count[*supervision.ClientConnected](ev) == 1 })
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	if err := s.StopClient(c.PID()); err != nil {
		t.Fatal(err)
	}
	<-conns[0].Done()
	if code, _ := conns[0].CloseReason(); code != websocket.StatusNormalClosure {
		t.Fatalf("StopClient closed with %v", code)
	}
	eventually(t, 2*time.Second, "the list to empty", func() bool { return len(s.ListClients()) == 0 })
	eventually(t, 2*time.Second, "ClientDisconnected and OnDisconnect", func() bool {
		return count[*supervision.ClientDisconnected](ev) == 1 && disconnected.Load() == 1
	})
	if err := s.StopClient(c.PID()); !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("second StopClient = %v", err)
	}
	if err := s.StopClient(actor.NewPID("nonhost", "nobody")); !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("StopClient(unknown) = %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if srv.TotalConns() != 1 || count[*supervision.ClientRestarted](ev) != 0 {
		t.Fatal("a stopped client was restarted")
	}
}

func TestStartClientFailureLeavesNoChild(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	bh := wstest.NewBlackhole()
	defer bh.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys)

	srv.RefuseHandshakes(503)
	_, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast(actors.WithRetryCount(1))...)
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || gu.Attempts != 2 {
		t.Fatalf("StartClient against 503 = %v, want *GiveUpError after 2 attempts", err)
	}

	srv.RefuseHandshakes(401)
	_, err = s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...)
	var fe *actors.FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("StartClient against 401 = %v, want *FatalError", err)
	}

	_, err = s.StartClient(ctxT(t, 300*time.Millisecond), bh.URL())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StartClient against a silent server = %v, want the context's error", err)
	}

	if _, err := s.StartClient(context.Background(), "http://bad"); !errors.As(err, new(*actors.ConfigError)) {
		t.Fatalf("StartClient(bad url) = %v", err)
	}
	eventually(t, 2*time.Second, "no child left", func() bool { return len(s.ListClients()) == 0 })
	if n := count[*supervision.ClientRestarted](ev); n != 0 {
		t.Fatalf("%d restarts for clients that never connected", n)
	}
}

func TestRestartKeepsPIDAndRunsOnConnectAgain(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys)
	var connects atomic.Int32
	box := make(chan actors.Inbound, 10)
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast(
		actors.WithOnConnect(func(*actor.PID) { connects.Add(1) }),
		actors.WithHandler(func(in actors.Inbound) { box <- in }))...)
	if err != nil {
		t.Fatal(err)
	}
	drop(t, srv, 1) // RetryCount 0: the client gives up at once and is restarted
	eventually(t, 5*time.Second, "a restart and a new connection", func() bool {
		h := c.Health()
		return h.Restarts == 1 && h.State == actors.StateConnected && connects.Load() == 2
	})
	if l := s.ListClients(); len(l) != 1 || !l[0].Equal(c.PID()) {
		t.Fatalf("after restart ListClients = %v", l)
	}
	r := first[*supervision.ClientRestarted](ev)
	var gu *actors.GiveUpError
	if err, ok := r.Reason.(error); r == nil || !ok || !errors.As(err, &gu) || r.Restarts != 1 || !r.Client.Equal(c.PID()) {
		t.Fatalf("ClientRestarted = %+v", r)
	}
	if err := c.Send(ctxT(t, time.Second), []byte("same handle")); err != nil {
		t.Fatalf("Send through the handle after the restart: %v", err)
	}
	if in := <-box; string(in.Data) != "same handle" || in.Generation != 2 {
		t.Fatalf("after restart got %+v", in)
	}
	eventually(t, 2*time.Second, "two ClientConnected", func() bool { return count[*supervision.ClientConnected](ev) == 2 })
}

func TestRestartBudgetIsExact(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys, supervision.WithRestartBudget(2, time.Minute))
	var disconnected atomic.Int32
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast(actors.WithOnDisconnect(func(*actor.PID) { disconnected.Add(1) }))...)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		drop(t, srv, 1)
		eventually(t, 5*time.Second, "restart", func() bool {
			return c.Health().Restarts == uint64(i) && c.State() == actors.StateConnected
		})
	}
	drop(t, srv, 1) // the third failure within the window: stopped for good
	eventually(t, 5*time.Second, "stopped for good", func() bool {
		return c.State() == actors.StateDisconnected && len(s.ListClients()) == 0
	})
	eventually(t, 2*time.Second, "events and OnDisconnect", func() bool {
		return count[*supervision.ClientGaveUp](ev) == 1 && count[*supervision.ClientDisconnected](ev) == 1 && disconnected.Load() == 1
	})
	if n := count[*supervision.ClientRestarted](ev); n != 2 {
		t.Fatalf("%d restarts with a budget of 2", n)
	}
	if g := first[*supervision.ClientGaveUp](ev); g.Restarts != 2 || g.Within != time.Minute {
		t.Fatalf("ClientGaveUp = %+v", g)
	}
	if d := first[*supervision.ClientDisconnected](ev); d.Reason == nil {
		t.Fatal("ClientDisconnected without a reason")
	}
	time.Sleep(100 * time.Millisecond)
	if srv.TotalConns() != 3 {
		t.Fatalf("server saw %d connections; a stopped client came back", srv.TotalConns())
	}
}

func TestFailuresOutsideTheWindowDoNotCount(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	const window = 300 * time.Millisecond
	s := start(t, sys, supervision.WithRestartBudget(1, window))
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		drop(t, srv, 1)
		eventually(t, 5*time.Second, "restart", func() bool {
			return c.Health().Restarts == uint64(i) && c.State() == actors.StateConnected
		})
		time.Sleep(window + 100*time.Millisecond) // the previous restart leaves the window
	}
	if count[*supervision.ClientGaveUp](ev) != 0 || len(s.ListClients()) != 1 {
		t.Fatal("failures outside the window counted against the budget")
	}
	// Two failures inside one window: the second stops it.
	drop(t, srv, 1)
	eventually(t, 5*time.Second, "restart", func() bool { return c.Health().Restarts == 4 && c.State() == actors.StateConnected })
	drop(t, srv, 1)
	eventually(t, 5*time.Second, "stopped", func() bool { return c.State() == actors.StateDisconnected })
}

func TestFatalErrorStopsWithoutBurningBudget(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys, supervision.WithRestartBudget(1, time.Minute))
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast(actors.WithRetryCount(2))...)
	if err != nil {
		t.Fatal(err)
	}
	srv.RefuseHandshakes(403)
	drop(t, srv, 1)
	eventually(t, 5*time.Second, "stopped", func() bool { return c.State() == actors.StateDisconnected })
	eventually(t, 2*time.Second, "ClientDisconnected", func() bool { return count[*supervision.ClientDisconnected](ev) == 1 })
	var fe *actors.FatalError
	if d := first[*supervision.ClientDisconnected](ev); !errors.As(d.Reason, &fe) {
		t.Fatalf("ClientDisconnected reason = %v, want *FatalError", d.Reason)
	}
	if count[*supervision.ClientRestarted](ev)+count[*supervision.ClientGaveUp](ev) != 0 {
		t.Fatal("a fatal error went through the restart budget")
	}
}

func TestRestartStormIsPacedAndBounded(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys, supervision.WithRestartBudget(3, time.Minute))
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(),
		actors.WithRetryCount(1), actors.WithRetryDelay(5*time.Millisecond), actors.WithMaxBackoff(40*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	srv.RefuseHandshakes(503) // from now on every connection is refused
	drop(t, srv, 1)
	eventually(t, 10*time.Second, "stopped for good", func() bool { return c.State() == actors.StateDisconnected })
	time.Sleep(200 * time.Millisecond)
	// Dials: 1 after the drop (RetryCount 1), then 2 per restart (1 +
	// RetryCount) for 3 restarts: 7 in all, and each failure counted once.
	if got := srv.RefusedHandshakes(); got != 7 {
		t.Fatalf("server refused %d handshakes, want exactly 7", got)
	}
	if r, g := count[*supervision.ClientRestarted](ev), count[*supervision.ClientGaveUp](ev); r != 3 || g != 1 {
		t.Fatalf("restarted %d, gave up %d; want 3 and 1", r, g)
	}
	var gu *actors.GiveUpError
	if err := c.Health().LastError; !errors.As(err, &gu) {
		t.Fatalf("LastError = %v", err)
	}
	var he *transport.HandshakeError
	if !errors.As(gu, &he) || he.StatusCode != 503 {
		t.Fatalf("give-up cause = %v", gu.Last)
	}
}

func TestSupervisorIntensityStopsEverythingAndEscalates(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys, supervision.WithSupervisorIntensity(1, time.Minute))
	for i := 0; i < 2; i++ {
		if _, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...); err != nil {
			t.Fatal(err)
		}
	}
	drop(t, srv, 2) // two failures: the second crosses an intensity of 1
	eventually(t, 5*time.Second, "SupervisorGaveUp", func() bool { return count[*supervision.SupervisorGaveUp](ev) == 1 })
	eventually(t, 5*time.Second, "every client gone", func() bool { return len(s.ListClients()) == 0 })
	if _, err := s.StartClient(ctxT(t, 2*time.Second), srv.URL()); !errors.Is(err, supervision.ErrStopped) && !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("StartClient on a supervisor that gave up = %v", err)
	}
}

func TestStopClosesEveryClient(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	s, err := supervision.Start(sys)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), actors.WithHeartbeat(actors.HeartbeatPingPong, 20*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 3)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		<-c.Done()
		if code, _ := c.CloseReason(); code != websocket.StatusNormalClosure {
			t.Fatalf("Stop closed a client with %v", code)
		}
	}
	if len(s.ListClients()) != 0 {
		t.Fatal("clients listed after Stop")
	}
	if err := s.Stop(); err != nil && !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("second Stop = %v", err)
	}
}

func TestPanickingOnConnectIsSwallowed(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	ev := watch(t, sys)
	s := start(t, sys)
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), actors.WithOnConnect(func(*actor.PID) { panic("callback bug") }))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "the panic counted", func() bool { return c.Health().HandlerPanics == 1 })
	// The event comes from the observer goroutine, not in order with OnConnect.
	eventually(t, 2*time.Second, "the event published", func() bool { return count[*supervision.ClientConnected](ev) >= 1 })
	if c.State() != actors.StateConnected || count[*supervision.ClientConnected](ev) != 1 {
		t.Fatal("a panicking OnConnect took the client down or hid the event")
	}
}

func TestRestartedClientRestoresSubscriptions(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	sys := newSystem(t)
	s := start(t, sys)
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctxT(t, 2*time.Second), "book.BTC.raw"); err != nil {
		t.Fatal(err)
	}
	drop(t, srv, 1) // RetryCount 0: a restart, not just a reconnect
	eventually(t, 5*time.Second, "restarted and connected", func() bool {
		return c.Health().Restarts == 1 && c.State() == actors.StateConnected
	})
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	if got := conns[len(conns)-1].Channels(); len(got) != 1 || got[0] != "book.BTC.raw" {
		t.Fatalf("after the restart the server has %v", got)
	}
}
