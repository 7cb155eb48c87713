package actors_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// healthLog is a health watcher actor: it keeps every update a client
// pushes (one per published snapshot), so a test sees each transition
// without sampling.
type healthLog struct{ ch chan actors.Health }

func (h *healthLog) Receive(ctx actor.Context) {
	if u, ok := ctx.Message().(*actors.HealthUpdate); ok {
		select {
		case h.ch <- u.Health:
		default:
		}
	}
}

// watchHealth registers a healthLog on c and returns its updates.
func watchHealth(t *testing.T, sys *actor.ActorSystem, c *actors.Client) <-chan actors.Health {
	t.Helper()
	h := &healthLog{ch: make(chan actors.Health, 10000)}
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h }))
	t.Cleanup(func() { _ = sys.Root.StopFuture(pid).Wait() })
	if err := c.WatchHealth(pid); err != nil {
		t.Fatal(err)
	}
	return h.ch
}

// nextHealth returns the first update that matches, failing the test when
// none comes within 10 s; every update it passes over goes to seen.
func nextHealth(t *testing.T, ch <-chan actors.Health, what string, seen func(actors.Health), match func(actors.Health) bool) actors.Health {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case h := <-ch:
			if seen != nil {
				seen(h)
			}
			if match(h) {
				return h
			}
		case <-deadline:
			t.Fatalf("no health update with %s within 10 s", what)
			return actors.Health{}
		}
	}
}

// Health names the endpoint (redacted) and the label, says since when the
// connection is up, and when the venue last sent anything (before: none of
// these fields existed).
func TestHealthShowsEndpointLabelAndConnection(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	box := newInbox()
	before := time.Now()
	c := connect(t, newSystem(t), srv.URL()+"feed?token=QUERYSECRET123", fast(actors.WithLabel("md-1"), actors.WithHandler(box.handle))...)
	after := time.Now()
	h := c.Health()
	if h.Endpoint == "" || !strings.Contains(h.Endpoint, srv.Addr()) || strings.Contains(h.Endpoint, "QUERYSECRET123") {
		t.Fatalf("Endpoint = %q, want the URL with its secret redacted", h.Endpoint)
	}
	if h.Label != "md-1" {
		t.Fatalf("Label = %q", h.Label)
	}
	if h.ConnectedSince.Before(before) || h.ConnectedSince.After(after) {
		t.Fatalf("ConnectedSince = %v, want within the connect [%v, %v]", h.ConnectedSince, before, after)
	}
	if h.Attempt != 0 || !h.NextRetry.IsZero() {
		t.Fatalf("connected: Attempt %d, NextRetry %v; want 0 and zero", h.Attempt, h.NextRetry)
	}
	if !h.LastInbound.IsZero() {
		t.Fatalf("LastInbound = %v before the venue sent anything", h.LastInbound)
	}
	conns, err := srv.WaitConns(ctxT(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for i := range 2 {
		sent := time.Now()
		if err := conns[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte("tick")); err != nil {
			t.Fatal(err)
		}
		box.next(t)
		in := c.Health().LastInbound
		if in.Before(sent) || !in.After(last) {
			t.Fatalf("message %d sent at %v: LastInbound = %v (before: %v), want it to move to the arrival", i+1, sent, in, last)
		}
		last = in
	}
	if c.Health().ConnectedSince != h.ConnectedSince {
		t.Fatal("ConnectedSince moved while the connection stayed up")
	}
}

// While the venue is down, Health says which attempt the client is on and
// when it tries next, with the error that ended the last one; once back,
// those clear and ConnectedSince is the new connection's.
func TestHealthWhileReconnecting(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	c := connect(t, sys, srv.URL(), actors.WithRetryCount(50), actors.WithTimeout(2*time.Second),
		actors.WithRetryDelay(300*time.Millisecond), actors.WithMaxBackoff(300*time.Millisecond), func(c *actors.Config) { c.StableAfter = actors.MinStableAfter })
	updates := watchHealth(t, sys, c)
	waitServerConn(t, srv)
	srv.RefuseHandshakes(503)
	down := time.Now()
	srv.DropAll()
	var unset []actors.Health
	seen := func(h actors.Health) {
		if h.State == actors.StateReconnecting && h.LastError == nil {
			unset = append(unset, h)
		}
	}
	for _, want := range []int{1, 2} {
		h := nextHealth(t, updates, "a scheduled retry", seen, func(h actors.Health) bool {
			return h.State == actors.StateReconnecting && !h.NextRetry.IsZero() && h.Attempt >= want
		})
		if !h.ConnectedSince.IsZero() {
			t.Fatalf("reconnecting: ConnectedSince = %v, want zero", h.ConnectedSince)
		}
		if h.NextRetry.Before(down) || h.NextRetry.After(time.Now().Add(time.Second)) {
			t.Fatalf("NextRetry = %v, want within the backoff (300 ms) of now", h.NextRetry)
		}
		// The first wait may follow the lost connection (when it was not up
		// for StableAfter); the second follows a refused handshake.
		if h.LastError == nil || (want == 2 && !strings.Contains(h.LastError.Error(), "503")) {
			t.Fatalf("attempt %d: LastError = %v, want the lost connection or the refused handshake", h.Attempt, h.LastError)
		}
	}
	srv.RefuseHandshakes(0)
	h := nextHealth(t, updates, "the reconnect", seen, func(h actors.Health) bool { return h.State == actors.StateConnected })
	if h.Attempt != 0 || !h.NextRetry.IsZero() || h.ConnectedSince.Before(down) || h.Generation != 2 {
		t.Fatalf("reconnected: Attempt %d, NextRetry %v, ConnectedSince %v (down at %v), Generation %d", h.Attempt, h.NextRetry, h.ConnectedSince, down, h.Generation)
	}
	if len(unset) > 0 {
		t.Fatalf("%d reconnecting snapshots without LastError, first %+v", len(unset), unset[0])
	}
}

// A client its supervisor restarts keeps its LastError (before: the
// restarted instance published StateReconnecting with LastError nil).
func TestHealthLastErrorSurvivesRestart(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	cfg, err := actors.NewConfig(srv.URL(), fast(actors.WithRetryCount(1))...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := actors.Spawn(sys.Root, cfg) // the default guardian restarts it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.WaitConnected(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	updates := watchHealth(t, sys, c)
	waitServerConn(t, srv)
	srv.RefuseHandshakes(503)
	srv.DropAll()
	var unset []actors.Health
	h := nextHealth(t, updates, "a restart", func(h actors.Health) {
		if h.State == actors.StateReconnecting && h.LastError == nil {
			unset = append(unset, h)
		}
	}, func(h actors.Health) bool { return h.Restarts >= 1 && h.State == actors.StateReconnecting })
	if len(unset) > 0 {
		t.Fatalf("%d reconnecting snapshots without LastError, first %+v", len(unset), unset[0])
	}
	var gu *actors.GiveUpError
	if !errors.As(h.LastError, &gu) {
		t.Fatalf("after the restart: LastError = %v, want the *GiveUpError that caused it", h.LastError)
	}
}

// A label is bounded and printable: it goes on every log line.
func TestWithLabelIsBounded(t *testing.T) {
	for _, label := range []string{strings.Repeat("x", 65), "md\n{\"level\":\"error\"}", "bad\xff"} {
		_, err := actors.NewConfig("ws://127.0.0.1:1/", actors.WithLabel(label))
		var ce *actors.ConfigError
		if !errors.As(err, &ce) || ce.Field != "Label" {
			t.Errorf("WithLabel(%q): %v, want a *ConfigError for Label", label, err)
		}
	}
	for _, label := range []string{"", strings.Repeat("x", 64), "deribit md 1 (ελ)"} {
		if _, err := actors.NewConfig("ws://127.0.0.1:1/", actors.WithLabel(label)); err != nil {
			t.Errorf("WithLabel(%q): %v", label, err)
		}
	}
}
