package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// observed is a logger that keeps its lines at level and above.
func observed(level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(level)
	return zap.New(core), logs
}

// waitLog waits for a line with message msg at level.
func waitLog(t *testing.T, logs *observer.ObservedLogs, level zapcore.Level, msg string) observer.LoggedEntry {
	t.Helper()
	var found observer.LoggedEntry
	eventually(t, 5*time.Second, fmt.Sprintf("a %v line %q", level, msg), func() bool {
		for _, e := range logs.FilterMessage(msg).All() {
			if e.Level == level {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// The client is logged as one readable string (its PID's id), not as
// protobuf text (before: client=`Address:"nonhost" Id:"$1"`), and the
// label is on every line.
func TestLogsNameTheClientReadably(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	log, logs := observed(zap.DebugLevel)
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithLogger(log), actors.WithLabel("md-1"))...)
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "the reconnect", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range logs.All() {
		m := e.ContextMap()
		if m["client"] != c.PID().Id {
			t.Fatalf("line %q: client=%v, want %q", e.Message, m["client"], c.PID().Id)
		}
		if m["label"] != "md-1" {
			t.Fatalf("line %q: label=%v, want md-1", e.Message, m["label"])
		}
		for k, v := range m {
			if s := fmt.Sprint(v); strings.Contains(s, "Address:") || strings.Contains(s, "nonhost") {
				t.Fatalf("line %q: %s=%s holds the PID's protobuf form", e.Message, k, s)
			}
		}
	}
}

// An operator at WARN sees a lost connection and each failed reconnect
// attempt (before: both INFO, so nothing until the client gave up); the
// reconnect itself is INFO.
func TestLostConnectionAndFailedAttemptsAreWarn(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	log, logs := observed(zap.InfoLevel)
	// Attempts wait at least 1 s apart on average, so the per-second limit
	// lets more than one attempt line through.
	c := connect(t, newSystem(t), srv.URL(), actors.WithLogger(log), actors.WithRetryCount(20),
		actors.WithRetryDelay(time.Second), actors.WithMaxBackoff(time.Second), func(c *actors.Config) { c.StableAfter = actors.MinStableAfter })
	waitServerConn(t, srv)
	srv.RefuseHandshakes(503)
	srv.DropAll()
	lost := waitLog(t, logs, zap.WarnLevel, "connection lost; reconnecting")
	if _, ok := lost.ContextMap()["error"]; !ok {
		t.Fatalf("the lost-connection line has no error: %v", lost.ContextMap())
	}
	failed := waitLog(t, logs, zap.WarnLevel, "connection attempt failed")
	if m := failed.ContextMap(); m["stage"] != "dial" || m["attempt"] == nil || !strings.Contains(fmt.Sprint(m["error"]), "503") {
		t.Fatalf("the failed attempt line: %v", m)
	}
	srv.RefuseHandshakes(0)
	waitLog(t, logs, zap.InfoLevel, "reconnected")
	if c.State() != actors.StateConnected {
		t.Fatalf("state %v after reconnected", c.State())
	}
}

// A flapping venue (accept, then drop at once) loses the connection and
// heals it many times a second: at WARN (and INFO for "reconnected") each
// shows at most once a second per client, the rest go to DEBUG and are
// counted in the next line through.
func TestConnectionWarningsAreRateLimitedPerClient(t *testing.T) {
	venue := testutil.NewFlappy(t, 0)
	log, logs := observed(zap.DebugLevel)
	cfg, err := actors.NewConfig(venue.URL(), actors.WithLogger(log), actors.WithRetryCount(100000),
		actors.WithRetryDelay(time.Millisecond), actors.WithMaxBackoff(5*time.Millisecond),
		func(c *actors.Config) { c.StableAfter = time.Second }, func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 0, 0 })
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := actors.Spawn(newSystem(t).Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// Two lines through at each level: more than a second of flapping.
	eventually(t, 10*time.Second, "two lost-connection lines at WARN and two reconnected at INFO", func() bool {
		return logs.FilterMessage("connection lost; reconnecting").FilterLevelExact(zap.WarnLevel).Len() >= 2 &&
			logs.FilterMessage("reconnected").FilterLevelExact(zap.InfoLevel).Len() >= 2
	})
	_ = c.Close()
	elapsed := time.Since(start)
	for _, line := range []struct {
		msg   string
		level zapcore.Level
	}{{"connection lost; reconnecting", zap.WarnLevel}, {"reconnected", zap.InfoLevel}} {
		all := logs.FilterMessage(line.msg)
		through := all.FilterLevelExact(line.level)
		t.Logf("flapping venue: %d %q lines in %v, %d of them at %v", all.Len(), line.msg, elapsed.Round(time.Millisecond), through.Len(), line.level)
		if through.Len() == 0 {
			t.Fatalf("no %q line at %v", line.msg, line.level)
		}
		if limit := int(elapsed/time.Second) + 1; through.Len() > limit {
			t.Fatalf("%d %q lines at %v in %v, want at most %d (one a second)", through.Len(), line.msg, line.level, elapsed, limit)
		}
		if all.FilterLevelExact(zap.DebugLevel).Len() == 0 {
			t.Fatalf("the %q lines held back did not go to DEBUG", line.msg)
		}
		if through.Len() > 1 {
			if n, _ := through.All()[1].ContextMap()["suppressed"].(uint64); n == 0 {
				t.Fatalf("the second %q line does not count the held-back lines: %v", line.msg, through.All()[1].ContextMap())
			}
		}
	}
}

// After a clean stop the "stopped" line gives why it stopped, not an
// earlier close (before: reason = the drop healed minutes ago).
func TestStoppedLineGivesWhyItStopped(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	log, logs := observed(zap.InfoLevel)
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithLogger(log))...)
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "the reconnect", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	stopped := waitLog(t, logs, zap.InfoLevel, "stopped")
	if m := stopped.ContextMap(); m["reason"] != "closed by user" {
		t.Fatalf("stopped after Close: reason=%v, want \"closed by user\"", m["reason"])
	}

	// A client that gives up says so in its stopped line.
	log2, logs2 := observed(zap.InfoLevel)
	srv2 := wstest.NewServer()
	defer srv2.Close()
	c2 := connect(t, newSystem(t), srv2.URL(), fast(actors.WithLogger(log2), actors.WithRetryCount(1))...)
	waitServerConn(t, srv2)
	srv2.RefuseHandshakes(503)
	srv2.DropAll()
	<-c2.Done()
	stopped = waitLog(t, logs2, zap.WarnLevel, "stopped")
	var gu *actors.GiveUpError
	if reason := c2.Health().StopReason; !errors.As(reason, &gu) || stopped.ContextMap()["reason"] != reason.Error() {
		t.Fatalf("stopped after giving up: reason=%v, want the StopReason %v", stopped.ContextMap()["reason"], reason)
	}
}

// DEBUG shows the connect pipeline's hooks (before: nothing about them).
func TestDebugShowsConnectHooks(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	log, logs := observed(zap.DebugLevel)
	hook := func(ctx context.Context, s *actors.Setup) error {
		_, err := s.Call(ctx, "public/get_time", nil)
		return err
	}
	connect(t, newSystem(t), srv.URL(), fast(actors.WithLogger(log), actors.WithConnectHook(hook))...)
	running := waitLog(t, logs, zap.DebugLevel, "connect hook running")
	done := waitLog(t, logs, zap.DebugLevel, "connect hook done")
	for _, e := range []observer.LoggedEntry{running, done} {
		if m := e.ContextMap(); m["hook"] != int64(1) || m["generation"] != uint64(1) {
			t.Fatalf("%q: %v", e.Message, m)
		}
	}
}
