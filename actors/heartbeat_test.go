package actors_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

func TestPingPongMeasuresRealRoundTrips(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithHeartbeat(actors.HeartbeatPingPong, 20*time.Millisecond))
	eventually(t, 5*time.Second, "three answered pings", func() bool { return c.Health().RTTSamples >= 3 })
	h := c.Health()
	if h.RTTP50 <= 0 || h.RTTP99 < h.RTTP50 || h.RTTLast <= 0 || h.LastHeartbeat.IsZero() || h.HeartbeatFailures != 0 || h.Heartbeat != actors.HeartbeatPingPong {
		t.Fatalf("Health after pings: %+v", h)
	}
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	if conns[0].PingsReceived() < 3 {
		t.Fatalf("server saw %d pings", conns[0].PingsReceived())
	}
}

func TestPingPongDetectsHalfOpenConnection(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithHeartbeat(actors.HeartbeatPingPong, 50*time.Millisecond), func(c *actors.Config) { c.HeartbeatMisses = 2 })...)
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	conns[0].Stall()
	eventually(t, 5*time.Second, "a new connection after the stall", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	h := c.Health()
	if !errors.Is(h.LastError, actors.ErrHeartbeatTimeout) || h.HeartbeatMisses < 2 || h.Reconnects != 1 {
		t.Fatalf("after half-open detection: %+v", h)
	}
}

func TestDeribitHeartbeatIsAnsweredAndConsumed(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithDeribitHeartbeat(30*time.Millisecond))
	defer srv.Close()
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), actors.WithHandler(box.handle), actors.WithHeartbeat(actors.HeartbeatDeribit, 30*time.Millisecond))
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	eventually(t, 5*time.Second, "test_requests answered and periodic tests measured", func() bool {
		return conns[0].HeartbeatsSent() >= 5 && c.Health().RTTSamples >= 3
	})
	if conns[0].HeartbeatTimedOut() || srv.TotalConns() != 1 || c.Health().Generation != 1 {
		t.Fatal("the server closed a connection whose heartbeats were answered")
	}
	if conns[0].TestResponses() < conns[0].HeartbeatsSent()-1 {
		t.Fatalf("server sent %d test_requests, got %d public/test", conns[0].HeartbeatsSent(), conns[0].TestResponses())
	}
	if got := box.all(); len(got) != 0 {
		t.Fatalf("heartbeat traffic reached the handler: %q", got[0].Data)
	}
	if err := c.Send(ctxT(t, time.Second), []byte("user data")); err != nil {
		t.Fatal(err)
	}
	if in := box.next(t); string(in.Data) != "user data" {
		t.Fatalf("handler got %q", in.Data)
	}
}

func TestDeribitServerClosesWhenUnanswered(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitHeartbeat(30 * time.Millisecond))
	defer srv.Close()
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithHandler(box.handle))...)
	eventually(t, 5*time.Second, "the server to close the silent client and the client to reconnect", func() bool {
		return c.Health().Generation >= 2
	})
	// Without the Deribit heartbeat the client is a plain peer: the
	// test_request reaches the handler as JSON.
	if in := box.next(t); in.Kind != actors.KindJSON {
		t.Fatalf("test_request delivered as %v", in.Kind)
	}
}

func TestDeribitDetectsHalfOpenConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithHeartbeat(actors.HeartbeatDeribit, 40*time.Millisecond))...)
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	eventually(t, 5*time.Second, "a measured public/test", func() bool { return c.Health().RTTSamples >= 1 })
	conns[0].Stall()
	eventually(t, 5*time.Second, "reconnect after unanswered public/test", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	if err := c.Health().LastError; !errors.Is(err, actors.ErrHeartbeatTimeout) {
		t.Fatalf("LastError = %v", err)
	}
}

func TestBinanceWatchesServerPings(t *testing.T) {
	srv := wstest.NewServer(wstest.WithServerPings(20 * time.Millisecond))
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithHeartbeat(actors.HeartbeatBinance, 20*time.Millisecond), func(c *actors.Config) { c.ServerPingWindow = 300 * time.Millisecond })...)
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	eventually(t, 5*time.Second, "pongs to the server's pings", func() bool { return conns[0].PongsReceived() >= 5 })
	if h := c.Health(); h.Generation != 1 || h.LastHeartbeat.IsZero() {
		t.Fatalf("with server pings flowing: %+v", h)
	}
	conns[0].Stall()
	eventually(t, 5*time.Second, "reconnect after the server's pings stopped", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	if err := c.Health().LastError; !errors.Is(err, actors.ErrHeartbeatTimeout) {
		t.Fatalf("LastError = %v", err)
	}
}
