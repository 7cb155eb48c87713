package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// On every connection the hooks run first, then the restore, and only then
// is the client connected.
func TestConnectHooksRunBeforeRestoreAndConnected(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	var runs atomic.Int32
	var sendErr atomic.Value
	var client atomic.Pointer[actors.Client]
	hook := func(ctx context.Context, s *actors.Setup) error {
		runs.Add(1)
		if c := client.Load(); c != nil {
			if err := c.Send(ctx, []byte(`{}`)); err != nil {
				sendErr.Store(err) // the connection is not published yet
			}
			if got := c.State(); got == actors.StateConnected {
				return errors.New("client reported connected before its hooks ran")
			}
		}
		if s.Client().PID() == nil || s.Generation() == 0 {
			return errors.New("setup without client or generation")
		}
		_, err := s.Call(ctx, "public/auth", map[string]string{"grant_type": "client_credentials"})
		return err
	}
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithConnectHook(hook))...)
	client.Store(c)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Subscribe(ctx, "book.BTC.raw"); err != nil {
		t.Fatal(err)
	}
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnected", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	conns, _ := srv.WaitConns(ctx, 1)
	msgs := conns[0].Received()
	if len(msgs) < 2 {
		t.Fatalf("second connection saw %d messages", len(msgs))
	}
	first, _ := conns[0].WaitRequest(ctx, "public/auth")
	sub, _ := conns[0].WaitRequest(ctx, "public/subscribe")
	if !first.At.Before(sub.At) && !first.At.Equal(sub.At) {
		t.Fatalf("auth at %v came after the restore at %v", first.At, sub.At)
	}
	if string(msgs[0].Data) != string(first.Data) {
		t.Fatalf("first message on the new connection is %s, want the hook's auth", msgs[0].Data)
	}
	if !conns[0].Authenticated() {
		t.Fatal("server connection not authenticated")
	}
	if runs.Load() != 2 {
		t.Fatalf("hook ran %d times, want once per connection (2)", runs.Load())
	}
	if err, _ := sendErr.Load().(error); !errors.Is(err, actors.ErrNotConnected) {
		t.Fatalf("Send during a hook: %v, want ErrNotConnected", err)
	}
}

func TestFailingConnectHookRetriesWithBackoff(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	var runs atomic.Int32
	hook := func(ctx context.Context, s *actors.Setup) error {
		switch runs.Add(1) {
		case 1:
			return errors.New("auth service busy")
		case 2:
			panic("hook bug")
		}
		return nil
	}
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithConnectHook(hook))...)
	if runs.Load() != 3 || c.State() != actors.StateConnected {
		t.Fatalf("hook ran %d times, state %v", runs.Load(), c.State())
	}
	// The server lists a connection a moment after the client saw it open.
	eventually(t, 5*time.Second, "three connections on the server, one per attempt", func() bool { return srv.TotalConns() == 3 })
	// The failed attempts' connections were closed.
	if err := srv.WaitConnCount(ctxT(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
}

func TestFatalConnectHookStopsTheClient(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	wrong := errors.New("invalid_credentials")
	hook := func(context.Context, *actors.Setup) error { return actors.Fatal(wrong) }
	_, err := actors.Connect(ctxT(t, 10*time.Second), newSystem(t), srv.URL(), fast(actors.WithConnectHook(hook))...)
	var fe *actors.FatalError
	if !errors.As(err, &fe) || !errors.Is(err, wrong) {
		t.Fatalf("Connect: %v, want a *FatalError wrapping the hook's error", err)
	}
	eventually(t, 5*time.Second, "the connection on the server", func() bool { return srv.TotalConns() >= 1 })
	time.Sleep(50 * time.Millisecond)
	if n := srv.TotalConns(); n != 1 {
		t.Fatalf("server saw %d connections: a fatal hook error must not be retried", n)
	}
}

func TestConnectHookFailingForeverGivesUp(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	hook := func(context.Context, *actors.Setup) error { return errors.New("still busy") }
	givesUpAfterThreeAttempts(t, srv, hook)
}

// A connection lost during its connect pipeline is a failed attempt: it
// counts against RetryCount like a failed dial.
func TestConnectionLostDuringHookCountsAsAnAttempt(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.Handle("dropme", func(c *wstest.Conn, _ json.RawMessage) (any, *wstest.RPCError) {
		c.Drop()
		return nil, nil
	})
	hook := func(ctx context.Context, s *actors.Setup) error {
		_, err := s.Call(ctx, "dropme", nil)
		return err
	}
	givesUpAfterThreeAttempts(t, srv, hook)
}

// givesUpAfterThreeAttempts connects with hook and RetryCount 2: Connect
// must give up after 3 attempts, and the server must have seen exactly 3
// connections (it lists one a moment after the client saw it open).
func givesUpAfterThreeAttempts(t *testing.T, srv *wstest.Server, hook actors.ConnectHook) {
	t.Helper()
	_, err := actors.Connect(ctxT(t, 10*time.Second), newSystem(t), srv.URL(),
		fast(actors.WithConnectHook(hook), actors.WithRetryCount(2))...)
	var ge *actors.GiveUpError
	if !errors.As(err, &ge) || ge.Attempts != 3 {
		t.Fatalf("Connect: %v, want a GiveUpError after 3 attempts", err)
	}
	eventually(t, 5*time.Second, "three connections on the server", func() bool { return srv.TotalConns() == 3 })
	time.Sleep(50 * time.Millisecond)
	if n := srv.TotalConns(); n != 3 {
		t.Fatalf("server saw %d connections after giving up, want 3", n)
	}
}
