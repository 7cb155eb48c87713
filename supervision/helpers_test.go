package supervision_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

func newSystem(t *testing.T) *actor.ActorSystem { return testutil.NewSystem(t) }

func ctxT(t *testing.T, d time.Duration) context.Context { return testutil.Context(t, d) }

func start(t *testing.T, sys *actor.ActorSystem, opts ...supervision.Option) *supervision.Supervisor {
	t.Helper()
	s, err := supervision.Start(sys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// fast keeps reconnects quick; RetryCount 0 makes every lost connection
// one failure to the supervisor.
func fast(opts ...actors.Option) []actors.Option {
	return append([]actors.Option{
		actors.WithRetryDelay(10 * time.Millisecond),
		actors.WithMaxBackoff(50 * time.Millisecond),
		actors.WithRetryCount(0),
	}, opts...)
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, what, cond)
}

// events records the supervision events published on sys's event stream.
type events struct {
	mu  sync.Mutex
	all []any
}

func watch(t *testing.T, sys *actor.ActorSystem) *events {
	e := &events{}
	sub := sys.EventStream.Subscribe(func(evt any) {
		switch evt.(type) {
		case *supervision.ClientConnected, *supervision.ClientRestarted, *supervision.ClientGaveUp,
			*supervision.ClientDisconnected, *supervision.SupervisorGaveUp:
			e.mu.Lock()
			e.all = append(e.all, evt)
			e.mu.Unlock()
		}
	})
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	return e
}

func count[T any](e *events) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, x := range e.all {
		if _, ok := x.(T); ok {
			n++
		}
	}
	return n
}

func first[T any](e *events) T {
	e.mu.Lock()
	defer e.mu.Unlock()
	var zero T
	for _, x := range e.all {
		if v, ok := x.(T); ok {
			return v
		}
	}
	return zero
}

// drop cuts every open connection once the server lists them all.
func drop(t *testing.T, srv *wstest.Server, open int) {
	t.Helper()
	if err := srv.WaitConnCount(ctxT(t, 5*time.Second), open); err != nil {
		t.Fatalf("waiting for %d open connections: %v", open, err)
	}
	srv.DropAll()
}
