package nodews

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// restartableVenue is a venue.js process that a test can take down and bring back
// on the same port (a venue down for maintenance).
type restartableVenue struct {
	t    *testing.T
	port string
	stop func()
}

// startNodeVenue starts venue.js on port ("0": any free port) and returns
// it once it listens; the process is killed when the test ends.
func startNodeVenue(t *testing.T, port string) *restartableVenue {
	t.Helper()
	p, stop := startNode(t, "venue.js", port)
	return &restartableVenue{t: t, port: p, stop: stop}
}

func (v *restartableVenue) url() string { return "ws://127.0.0.1:" + v.port + "/" }

// Against the Node venue: Health names the endpoint and the label,
// LastInbound moves when the venue sends, and while the venue is down the
// client shows its attempt, its next retry and the last error, at WARN in
// the log too; when the venue is back those clear.
func TestHealthWithNodeWS(t *testing.T) {
	v := startNodeVenue(t, "0")
	core, logs := observer.New(zap.InfoLevel)
	before := time.Now()
	c, _ := connect(t, v.url(), actors.WithLabel("node-1"), actors.WithLogger(zap.New(core)), actors.WithRetryCount(100),
		actors.WithRetryDelay(300*time.Millisecond), actors.WithMaxBackoff(300*time.Millisecond), func(c *actors.Config) { c.StableAfter = minStableAfter })
	h := c.Health()
	if h.Endpoint != v.url() || h.Label != "node-1" || h.ConnectedSince.Before(before) || h.Attempt != 0 || !h.NextRetry.IsZero() {
		t.Fatalf("connected: Endpoint %q Label %q ConnectedSince %v Attempt %d NextRetry %v", h.Endpoint, h.Label, h.ConnectedSince, h.Attempt, h.NextRetry)
	}
	var last time.Time
	for i := range 2 {
		sent := time.Now()
		if _, err := c.Call(ctx(t), "echo", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
		in := c.Health().LastInbound
		if in.Before(sent) || !in.After(last) {
			t.Fatalf("call %d at %v: LastInbound = %v (before: %v), want the response's arrival", i+1, sent, in, last)
		}
		last = in
	}

	v.stop() // the venue goes down: connections end, dials are refused
	down := time.Now()
	var d actors.Health
	testutil.Eventually(t, 10*time.Second, "a scheduled retry after a refused dial", func() bool {
		d = c.Health()
		return d.State == actors.StateReconnecting && d.Attempt >= 2 && !d.NextRetry.IsZero()
	})
	if d.LastError == nil || !d.ConnectedSince.IsZero() || d.NextRetry.Before(down) || d.NextRetry.After(time.Now().Add(time.Second)) {
		t.Fatalf("venue down: LastError %v ConnectedSince %v NextRetry %v (down at %v)", d.LastError, d.ConnectedSince, d.NextRetry, down)
	}
	for _, msg := range []string{"connection lost; reconnecting", "connection attempt failed"} {
		if logs.FilterMessage(msg).FilterLevelExact(zap.WarnLevel).Len() == 0 {
			t.Fatalf("no %q line at WARN: %v", msg, logs.All())
		}
	}

	startNodeVenue(t, v.port) // back on the same port
	testutil.Eventually(t, 10*time.Second, "the reconnect", func() bool { return c.State() == actors.StateConnected })
	h = c.Health()
	if h.Attempt != 0 || !h.NextRetry.IsZero() || h.ConnectedSince.Before(down) || h.Generation != 2 {
		t.Fatalf("back: Attempt %d NextRetry %v ConnectedSince %v (down at %v) Generation %d", h.Attempt, h.NextRetry, h.ConnectedSince, down, h.Generation)
	}
	if logs.FilterMessage("reconnected").FilterLevelExact(zap.InfoLevel).Len() != 1 {
		t.Fatalf("want one reconnected line at INFO: %v", logs.FilterMessage("reconnected").All())
	}
}

// Against the Node venue: the connect hook's DEBUG lines on every
// connection, the client named by its PID's id, and after a drop healed and
// a Close the stopped line says "closed by user", not the old drop.
func TestLogsWithNodeWS(t *testing.T) {
	v := startNodeVenue(t, "0")
	core, logs := observer.New(zap.DebugLevel)
	hook := func(ctx context.Context, s *actors.Setup) error {
		_, err := s.Call(ctx, "echo", map[string]string{"hook": "auth"})
		return err
	}
	c, _ := connect(t, v.url(), actors.WithLogger(zap.New(core)), actors.WithConnectHook(hook), func(c *actors.Config) { c.StableAfter = minStableAfter })
	_, _ = c.Call(testutil.Context(t, time.Second), "drop", nil) // the venue destroys the TCP connection
	testutil.Eventually(t, 10*time.Second, "the reconnect", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for gen := uint64(1); gen <= 2; gen++ {
		n := 0
		for _, e := range logs.FilterMessage("connect hook done").All() {
			if e.ContextMap()["generation"] == gen {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("generation %d: %d \"connect hook done\" lines, want 1", gen, n)
		}
	}
	stopped := logs.FilterMessage("stopped").All()
	if len(stopped) != 1 || stopped[0].ContextMap()["reason"] != "closed by user" {
		t.Fatalf("stopped lines: %v, want one with reason \"closed by user\"", stopped)
	}
	for _, e := range logs.All() {
		if id := e.ContextMap()["client"]; id != c.PID().Id {
			t.Fatalf("line %q: client=%v, want %q", e.Message, id, c.PID().Id)
		}
	}
}
