package actors_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

func newSystem(t *testing.T) *actor.ActorSystem { return testutil.NewSystem(t) }

func ctxT(t *testing.T, d time.Duration) context.Context { return testutil.Context(t, d) }

// fast are options that keep reconnect tests quick.
func fast(opts ...actors.Option) []actors.Option {
	return append([]actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond),
		actors.WithMaxBackoff(100 * time.Millisecond),
		actors.WithTimeout(2 * time.Second),
		// Tests drop connections soon after connecting and expect a
		// redial each time: those connections count as stable.
		func(c *actors.Config) { c.StableAfter = actors.MinStableAfter },
	}, opts...)
}

func connect(t *testing.T, sys *actor.ActorSystem, url string, opts ...actors.Option) *actors.Client {
	t.Helper()
	c, err := actors.Connect(ctxT(t, 10*time.Second), sys, url, opts...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, what, cond)
}

// inbox collects what a handler receives.
type inbox struct {
	mu   sync.Mutex
	msgs []actors.Inbound
	ch   chan actors.Inbound
}

func newInbox() *inbox { return &inbox{ch: make(chan actors.Inbound, 10000)} }

func (b *inbox) handle(in actors.Inbound) {
	b.mu.Lock()
	b.msgs = append(b.msgs, in)
	b.mu.Unlock()
	select {
	case b.ch <- in:
	default:
	}
}

func (b *inbox) all() []actors.Inbound {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]actors.Inbound(nil), b.msgs...)
}

func (b *inbox) next(t *testing.T) actors.Inbound {
	t.Helper()
	select {
	case in := <-b.ch:
		return in
	case <-time.After(5 * time.Second):
		t.Fatal("no inbound message within 5s")
	}
	return actors.Inbound{}
}

// waitServerConn waits until the server has registered an open connection:
// a client can see the handshake complete a moment before the server lists
// the connection.
func waitServerConn(t *testing.T, srv *wstest.Server) {
	t.Helper()
	if _, err := srv.WaitConns(ctxT(t, 5*time.Second), 1); err != nil {
		t.Fatalf("server connection: %v", err)
	}
}
