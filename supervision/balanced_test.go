package supervision_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

func TestSendBalancedFollowsTheSupervisorsClients(t *testing.T) {
	sys := newSystem(t)
	s := start(t, sys)
	ctx := ctxT(t, 10*time.Second)
	var srvs []*wstest.Server
	for i := 0; i < 3; i++ {
		srv := wstest.NewServer()
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
	}
	for _, srv := range srvs[:2] {
		if _, err := s.StartClient(ctx, srv.URL(), fast()...); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SendBalanced(ctx, []byte(`{"hello":1}`)); err != nil {
		t.Fatal(err)
	}
	b, err := s.Balancer()
	if err != nil {
		t.Fatal(err)
	}
	eligible := func(n int) func() bool {
		return func() bool {
			c := 0
			for _, ch := range b.PoolHealth() {
				if ch.Eligible {
					c++
				}
			}
			return c == n
		}
	}
	testutil.Eventually(t, 5*time.Second, "two clients in the pool", eligible(2))
	// A client started later joins without waiting for the discovery timer;
	// a stopped one leaves.
	c3, err := s.StartClient(ctx, srvs[2].URL(), fast()...)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "the new client joined", eligible(3))
	if err := s.StopClient(c3.PID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "the stopped client left", func() bool { return len(b.PoolHealth()) == 2 })
	for i := 0; i < 20; i++ {
		if err := s.SendBalanced(ctx, []byte(`{"n":1}`), balancer.CallMaxAttempts(2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.SendBalanced(ctx, []byte("x")); !errors.Is(err, supervision.ErrStopped) && !errors.Is(err, balancer.ErrStopped) && !errors.Is(err, supervision.ErrNotFound) {
		t.Fatalf("after Stop: %v", err)
	}
}

// A supervisor stopped by its parent takes its balancer with it.
func TestBalancerStopsWithAnEmbeddedSupervisor(t *testing.T) {
	sys := newSystem(t)
	pid, err := sys.Root.SpawnNamed(supervision.Props(), "embedded-sup")
	if err != nil {
		t.Fatal(err)
	}
	s := supervision.NewSupervisor(sys, pid)
	var b *balancer.Balancer
	testutil.Eventually(t, 5*time.Second, "the supervisor's balancer", func() bool {
		var err error
		b, err = s.Balancer()
		return err == nil
	})
	_ = sys.Root.StopFuture(pid).Wait()
	testutil.Eventually(t, 5*time.Second, "the balancer stopped", func() bool {
		_, alive := sys.ProcessRegistry.Get(b.PID())
		return !alive
	})
	if err := b.Send(ctxT(t, time.Second), []byte("x")); !errors.Is(err, balancer.ErrStopped) {
		t.Fatalf("Send after the supervisor stopped: %v, want ErrStopped", err)
	}
}
