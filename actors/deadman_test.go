package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/transport/wstest"
)

// switchVenue has a dead man's switch spelled as a JSON-RPC request,
// "private/cancel_all_after" {"timeout": ms}, like OKX's cancel-all-after.
type switchVenue struct {
	after  time.Duration
	panics bool
}

func (*switchVenue) Name() string                  { return "switch" }
func (*switchVenue) Dialect() venue.Dialect        { return deribit.Dialect{} }
func (v *switchVenue) DeadManAfter() time.Duration { return v.after }
func (v *switchVenue) ArmDeadMan(ctx context.Context, s venue.Session, after time.Duration) error {
	if v.panics {
		panic("switch broken")
	}
	_, err := s.Request(ctx, []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"private/cancel_all_after","params":{"timeout":%d}}`,
		s.NextID(), after.Milliseconds())))
	return err
}

// switchServer answers private/cancel_all_after, counting the arms per
// connection and refusing the first refuse of them.
type switchServer struct {
	*wstest.Server
	mu      sync.Mutex
	arms    map[int]int
	timeout float64
	refuse  atomic.Int32
}

func newSwitchServer(t *testing.T) *switchServer {
	s := &switchServer{arms: map[int]int{}}
	s.Server = wstest.NewServer(wstest.WithDeribit(), wstest.WithResponder("private/cancel_all_after",
		func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
			if s.refuse.Add(-1) >= 0 {
				return nil, &wstest.RPCError{Code: 10000, Message: "switch refused"}
			}
			var p struct{ Timeout float64 }
			_ = json.Unmarshal(params, &p)
			s.mu.Lock()
			s.arms[c.ID()]++
			s.timeout = p.Timeout
			s.mu.Unlock()
			return "ok", nil
		}))
	t.Cleanup(s.Close)
	return s
}

func (s *switchServer) armsOf(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arms[id]
}

func TestDeadManArmedOnEveryConnectionAndRenewed(t *testing.T) {
	srv := newSwitchServer(t)
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithVenue(&switchVenue{after: time.Second}))...)
	waitServerConn(t, srv.Server)
	first := srv.Conns()[0].ID()
	// Armed before the client reported itself connected; the timeout is
	// at least 2 s whatever the venue asks.
	if srv.armsOf(first) < 1 {
		t.Fatal("connected without the switch armed")
	}
	srv.mu.Lock()
	timeout := srv.timeout
	srv.mu.Unlock()
	if timeout != 2000 {
		t.Fatalf("timeout %v ms, want the 2 s floor", timeout)
	}
	eventually(t, 10*time.Second, "a renewal on the live connection", func() bool { return srv.armsOf(first) >= 2 })

	srv.DropAll()
	eventually(t, 10*time.Second, "the reconnect", func() bool { return c.Health().Generation >= 2 && c.State() == actors.StateConnected })
	// The server may still list the dropped connection for a moment.
	second := first
	eventually(t, 10*time.Second, "the new connection on the server", func() bool {
		for _, sc := range srv.Conns() {
			if sc.ID() != first {
				second = sc.ID()
				return true
			}
		}
		return false
	})
	if srv.armsOf(second) < 1 {
		t.Fatalf("the new connection %d was not armed", second)
	}
	before := srv.armsOf(first)
	eventually(t, 10*time.Second, "a renewal on the new connection", func() bool { return srv.armsOf(second) >= 2 })
	if srv.armsOf(first) != before {
		t.Fatal("the lost connection's switch was renewed")
	}
}

func TestDeadManRefusedFailsTheAttempt(t *testing.T) {
	srv := newSwitchServer(t)
	srv.refuse.Store(2)
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithVenue(&switchVenue{after: time.Minute}), actors.WithRetryCount(5))...)
	if c.State() != actors.StateConnected {
		t.Fatalf("state %v", c.State())
	}
	waitServerConn(t, srv.Server)
	if h := c.Health(); h.Generation < 3 || srv.ConnCount() < 1 {
		t.Fatalf("generation %d: the two refused attempts were not retried", h.Generation)
	}
	// The refused connections may still be listed for a moment.
	eventually(t, 10*time.Second, "only the live connection on the server", func() bool { return len(srv.Conns()) == 1 })
	if live := srv.Conns()[0].ID(); srv.armsOf(live) != 1 {
		t.Fatalf("the live connection has %d arms", srv.armsOf(live))
	}
}

func TestDeadManPanicAndOff(t *testing.T) {
	srv := newSwitchServer(t)
	_, err := actors.Connect(ctxT(t, 10*time.Second), newSystem(t), srv.URL(),
		fast(actors.WithVenue(&switchVenue{after: time.Minute, panics: true}), actors.WithRetryCount(0))...)
	var pe *actors.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Connect: %v, want a *PanicError", err)
	}
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithVenue(&switchVenue{after: 0}))...)
	if _, err := c.Call(ctxT(t, 5*time.Second), "public/test", nil); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.arms) != 0 {
		t.Fatalf("a switch of 0 was armed: %v", srv.arms)
	}
}
