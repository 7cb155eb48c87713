package actors_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// closeProbe records every user callback and whether it started after
// Close had returned.
type closeProbe struct {
	returned     atomic.Bool // Close has returned
	handled      atomic.Int64
	late         atomic.Int64 // user calls that started after Close returned
	disconnects  atomic.Int64
	observedLate atomic.Int64
	release      chan struct{} // closed to unblock a stuck handler
	stuck        bool
	delay        time.Duration
	lastChange   atomic.Pointer[actors.StateChange]
}

func (p *closeProbe) opts() []actors.Option {
	return []actors.Option{
		actors.WithHandler(func(actors.Inbound) {
			if p.returned.Load() {
				p.late.Add(1)
			}
			p.handled.Add(1)
			if p.stuck {
				<-p.release
			}
			time.Sleep(p.delay)
		}),
		actors.WithOnDisconnect(func(*actor.PID) {
			if p.returned.Load() {
				p.late.Add(1)
			}
			p.disconnects.Add(1)
		}),
		actors.WithStateObserver(func(sc actors.StateChange) {
			if p.returned.Load() {
				p.observedLate.Add(1)
			}
			p.lastChange.Store(&sc)
		}),
	}
}

// checkCloseWithBacklog closes a client whose handler is slow (20 ms a
// message) with n messages routed to it, most still queued. Before: Close
// returned ErrTimeout after CloseWait while the handler went on for the
// backlog, and OnDisconnect ran seconds later. Now the backlog is dropped
// and counted, the call in progress finishes, OnDisconnect runs, Close
// returns nil, and nothing runs afterwards.
func checkCloseWithBacklog(t *testing.T, c *actors.Client, p *closeProbe, n int) {
	t.Helper()
	eventually(t, 10*time.Second, "every message routed", func() bool {
		h := c.Health()
		return p.handled.Load() > 0 && p.handled.Load()+int64(h.InboundQueued)+int64(h.InboundDropped) >= int64(n)
	})
	queued := c.Health().InboundQueued
	err := c.Close()
	p.returned.Store(true)
	if err != nil {
		t.Fatalf("Close with %d messages queued = %v, want nil (the backlog is dropped, not delivered)", queued, err)
	}
	if got := p.disconnects.Load(); got != 1 {
		t.Fatalf("OnDisconnect ran %d times before Close returned, want 1", got)
	}
	if sc := p.lastChange.Load(); sc == nil || sc.To != actors.StateDisconnected {
		t.Fatalf("last StateChange before Close returned: %+v, want To=disconnected", sc)
	}
	time.Sleep(300 * time.Millisecond) // what the slow handler would have been doing
	h := c.Health()
	t.Logf("close with %d queued: %d delivered, %d dropped; %d calls after Close returned", queued, p.handled.Load(), h.InboundDropped, p.late.Load())
	if late := p.late.Load() + p.observedLate.Load(); late != 0 {
		t.Fatalf("%d user calls started after Close returned", late)
	}
	if got := p.handled.Load() + int64(h.InboundDropped); got != int64(n) {
		t.Fatalf("%d delivered + %d dropped = %d, want every one of the %d messages accounted for", p.handled.Load(), h.InboundDropped, got, n)
	}
	if h.InboundDropped == 0 || h.InboundQueued != 0 {
		t.Fatalf("InboundDropped %d, InboundQueued %d: the backlog was not dropped and counted", h.InboundDropped, h.InboundQueued)
	}
}

func TestCloseDropsTheBacklogAndRunsOnDisconnectBeforeReturning(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	p := &closeProbe{delay: 20 * time.Millisecond}
	c := connect(t, newSystem(t), srv.URL(), fast(append(p.opts(), func(c *actors.Config) { c.CloseWait = 500 * time.Millisecond })...)...)
	conns, err := srv.WaitConns(ctxT(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200 // 4 s of handler work, 8 times CloseWait
	for i := range n {
		if err := conns[0].Send(ctxT(t, 5*time.Second), websocket.MessageText, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	checkCloseWithBacklog(t, c, p, n)
}

// checkCloseWithStuckHandler closes a client whose handler never returns
// (until the test releases it): Close returns ErrTimeout at its bound,
// OnDisconnect is skipped and never runs later, nor does the handler again.
func checkCloseWithStuckHandler(t *testing.T, c *actors.Client, p *closeProbe) {
	t.Helper()
	eventually(t, 10*time.Second, "the handler stuck with messages queued", func() bool {
		return p.handled.Load() == 1 && c.Health().InboundQueued > 0
	})
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second): // CloseWait is 300 ms
		close(p.release)
		t.Fatal("Close hung past its bound with a stuck handler")
	}
	p.returned.Store(true)
	if !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("Close with a stuck handler = %v, want ErrTimeout", err)
	}
	close(p.release)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client's goroutines did not end once the handler returned")
	}
	if p.disconnects.Load() != 0 || p.late.Load() != 0 || p.observedLate.Load() != 0 {
		t.Fatalf("after Close returned: OnDisconnect %d, late handler or callback calls %d, late observer calls %d; want none",
			p.disconnects.Load(), p.late.Load(), p.observedLate.Load())
	}
	if p.handled.Load() != 1 {
		t.Fatalf("the handler ran %d times, want only the stuck call", p.handled.Load())
	}
}

func TestCloseWithAStuckHandlerIsBoundedAndNeverCallsBackLater(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	p := &closeProbe{stuck: true, release: make(chan struct{})}
	c, err := actors.Connect(ctxT(t, 5*time.Second), newSystem(t), srv.URL(), fast(append(p.opts(), func(c *actors.Config) { c.CloseWait = 300 * time.Millisecond })...)...)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := srv.WaitConns(ctxT(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		_ = conns[0].Send(ctxT(t, 5*time.Second), websocket.MessageText, fmt.Appendf(nil, "m%d", i))
	}
	checkCloseWithStuckHandler(t, c, p)
}

// Close called from the handler: OnDisconnect runs inside that Close call,
// not after it returned.
func TestCloseFromTheHandlerRunsOnDisconnectBeforeReturning(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	var returned atomic.Bool
	var late, disconnects atomic.Int64
	var once sync.Once
	var self atomic.Pointer[actors.Client]
	closed := make(chan error, 1)
	c := connect(t, newSystem(t), srv.URL(), fast(
		actors.WithHandler(func(actors.Inbound) {
			if returned.Load() {
				late.Add(1)
			}
			once.Do(func() {
				err := self.Load().Close()
				returned.Store(true)
				closed <- err
			})
		}),
		actors.WithOnDisconnect(func(*actor.PID) {
			if returned.Load() {
				late.Add(1)
			}
			disconnects.Add(1)
		}))...)
	self.Store(c)
	conns, err := srv.WaitConns(ctxT(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_ = conns[0].Send(ctxT(t, 5*time.Second), websocket.MessageText, []byte("x"))
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from the handler = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close from the handler did not return")
	}
	if err := c.Wait(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if disconnects.Load() != 1 || late.Load() != 0 {
		t.Fatalf("OnDisconnect ran %d times, %d calls after Close returned; want 1 and 0", disconnects.Load(), late.Load())
	}
}
