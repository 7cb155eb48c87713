package supervision_test

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

func isListed(s *supervision.Supervisor, pid *actor.PID) bool {
	return slices.ContainsFunc(s.ListClients(), pid.Equal)
}

// checkFailedStartNotListed starts clients that fail (the venue refuses
// them) and reads ListClients the moment StartClient returns, no waiting.
// Before: the failed child was often still listed, until the supervisor
// had processed its Terminated.
func checkFailedStartNotListed(t *testing.T, s *supervision.Supervisor, url string, opts ...actors.Option) {
	t.Helper()
	for i := range 10 {
		_, err := s.StartClient(ctxT(t, 5*time.Second), url, opts...)
		var gu *actors.GiveUpError
		if !errors.As(err, &gu) {
			t.Fatalf("StartClient %d = %v, want a *GiveUpError", i, err)
		}
		if l := s.ListClients(); len(l) != 0 {
			t.Fatalf("StartClient %d failed, and right after it ListClients = %v", i, l)
		}
	}
}

// checkStoppedNotListed closes started clients and checks ListClients
// from their OnDisconnect and right after Close and Wait return. Before:
// OnDisconnect and Wait came before the supervisor dropped the client.
func checkStoppedNotListed(t *testing.T, s *supervision.Supervisor, url string, opts ...actors.Option) {
	t.Helper()
	var listedInOnDisconnect, disconnects atomic.Int32
	for i := range 10 {
		onDisconnect := actors.WithOnDisconnect(func(pid *actor.PID) {
			disconnects.Add(1)
			if isListed(s, pid) {
				listedInOnDisconnect.Add(1)
			}
		})
		cl, err := s.StartClient(ctxT(t, 5*time.Second), url, append(opts, onDisconnect)...)
		if err != nil {
			t.Fatal(err)
		}
		if !isListed(s, cl.PID()) {
			t.Fatalf("client %d not listed after StartClient", i)
		}
		waited := make(chan error, 1)
		go func() { waited <- cl.Wait(ctxT(t, 5*time.Second)) }()
		if err := cl.Close(); err != nil {
			t.Fatal(err)
		}
		if isListed(s, cl.PID()) {
			t.Fatalf("client %d listed right after Close returned", i)
		}
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
		if isListed(s, cl.PID()) {
			t.Fatalf("client %d listed right after Wait returned", i)
		}
	}
	if disconnects.Load() != 10 || listedInOnDisconnect.Load() != 0 {
		t.Fatalf("%d OnDisconnects, %d of them saw their client still listed", disconnects.Load(), listedInOnDisconnect.Load())
	}
}

func TestListClientsAfterAFailedStartClient(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(503)
	s := start(t, newSystem(t))
	checkFailedStartNotListed(t, s, srv.URL(), fast(actors.WithRetryCount(1))...)
}

func TestListClientsAroundOnDisconnectAndWait(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	s := start(t, newSystem(t))
	checkStoppedNotListed(t, s, srv.URL(), fast()...)
}

// A client stopped by a fatal error (the venue answers 401 on the redial)
// rather than by Close: gone from ListClients when Wait returns.
func TestListClientsAfterAFatalStop(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	s := start(t, newSystem(t))
	var listedInOnDisconnect atomic.Bool
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast(actors.WithRetryCount(3),
		actors.WithOnDisconnect(func(pid *actor.PID) { listedInOnDisconnect.Store(isListed(s, pid)) }))...)
	if err != nil {
		t.Fatal(err)
	}
	srv.RefuseHandshakes(401)
	drop(t, srv, 1)
	if err := c.Wait(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	var fe *actors.FatalError
	if !errors.As(c.Health().StopReason, &fe) {
		t.Fatalf("stop reason %v, want a *FatalError", c.Health().StopReason)
	}
	if isListed(s, c.PID()) || listedInOnDisconnect.Load() {
		t.Fatalf("listed after Wait returned: %v; listed in OnDisconnect: %v", isListed(s, c.PID()), listedInOnDisconnect.Load())
	}
}
