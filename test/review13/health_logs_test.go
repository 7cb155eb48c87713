package review13

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

func TestHealthFields(t *testing.T) {
	v := newVenue(t, false)
	sys := testutil.NewSystem(t)
	sup, err := supervision.Start(sys)
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Stop()
	ctx := testutil.Context(t, 15*time.Second)
	u := strings.Replace(v.url, "ws://", "ws://alice:hunter2pass@", 1) + "?apiKey=K3yValue9988&sym=btc"
	before := time.Now()
	c, err := sup.StartClient(ctx, u, baseOpts(actors.WithLabel("deribit-md-1"), actors.WithRetryCount(1))...)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Health()
	for _, sec := range []string{"hunter2pass", "K3yValue9988"} {
		if strings.Contains(h.Endpoint, sec) {
			t.Errorf("Endpoint %q shows %s", h.Endpoint, sec)
		}
	}
	if !strings.Contains(h.Endpoint, "127.0.0.1") || h.Label != "deribit-md-1" {
		t.Errorf("Endpoint %q Label %q", h.Endpoint, h.Label)
	}
	if h.ConnectedSince.Before(before) || h.Attempt != 0 || !h.NextRetry.IsZero() {
		t.Errorf("connected: ConnectedSince %v Attempt %d NextRetry %v", h.ConnectedSince, h.Attempt, h.NextRetry)
	}
	if _, err := c.Call(ctx, "public/test", nil); err != nil {
		t.Fatal(err)
	}
	li := c.Health().LastInbound
	if li.Before(before) {
		t.Errorf("LastInbound %v not updated by a response", li)
	}
	cs := c.Health().ConnectedSince
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.Health().ConnectedSince; !got.Equal(cs) {
		t.Errorf("Rotate changed ConnectedSince %v -> %v", cs, got)
	}
	// a drop: ConnectedSince zero while reconnecting, LastError set
	v.down.Store(true)
	v.dropAll()
	eventually(t, 3*time.Second, "reconnecting", func() bool { return c.State() != actors.StateConnected })
	h = c.Health()
	if !h.ConnectedSince.IsZero() {
		t.Errorf("ConnectedSince %v while %v", h.ConnectedSince, h.State)
	}
	eventually(t, 3*time.Second, "LastError set", func() bool { return c.Health().LastError != nil })
	// RetryCount 1: gives up, supervisor restarts; LastError survives
	eventually(t, 5*time.Second, "restart", func() bool { return c.Health().Restarts >= 1 })
	h = c.Health()
	if h.LastError == nil {
		t.Error("LastError lost across a supervisor restart")
	}
	for _, sec := range []string{"hunter2pass", "K3yValue9988"} {
		if strings.Contains(fmt.Sprint(h.LastError), sec) {
			t.Errorf("LastError shows %s: %v", sec, h.LastError)
		}
	}
	v.down.Store(false)
	eventually(t, 5*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })
	if h := c.Health(); h.ConnectedSince.IsZero() || h.LastError == nil || h.Attempt != 0 {
		t.Errorf("after coming back: ConnectedSince %v LastError %v Attempt %d", h.ConnectedSince, h.LastError, h.Attempt)
	}
}

// Connection loss and failed attempts at WARN, rate-limited to about one a
// second; readable client ids; the clean stop's reason.
func TestLogsWarnRateLimited(t *testing.T) {
	v := newVenue(t, false)
	logs, lg := observedLogger()
	sys := testutil.NewSystem(t)
	ctx := testutil.Context(t, 15*time.Second)
	c, err := actors.Connect(ctx, sys, v.url+"?token=TokValue12345678", baseOpts(actors.WithLogger(lg),
		actors.WithRetryDelay(time.Millisecond), actors.WithMaxBackoff(5*time.Millisecond),
		func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 0, 0 }, func(c *actors.Config) { c.StableAfter = 10 * time.Millisecond })...)
	if err != nil {
		t.Fatal(err)
	}
	// 1) flapping: 30 drops in ~1.5 s
	start := time.Now()
	for i := 0; i < 30; i++ {
		eventually(t, 2*time.Second, "connected", func() bool { return c.State() == actors.StateConnected && v.has(i+1) })
		time.Sleep(20 * time.Millisecond)
		v.dropAll()
	}
	eventually(t, 2*time.Second, "connected", func() bool { return c.State() == actors.StateConnected && v.has(31) })
	flapDur := time.Since(start)
	// 2) venue down for 1.5 s: many failed attempts
	v.down.Store(true)
	v.dropAll()
	time.Sleep(1500 * time.Millisecond)
	v.down.Store(false)
	eventually(t, 3*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var lost, failed, stopped, suppressed int
	for _, l := range logs.All() {
		m := l.ContextMap()
		line := l.Message + " " + fmt.Sprint(m)
		if strings.Contains(line, "TokValue12345678") {
			t.Errorf("secret in log: %s", line)
		}
		if cl, ok := m["client"]; ok {
			if s := fmt.Sprint(cl); strings.Contains(s, "Address") || strings.Contains(s, "nonhost") || !strings.HasPrefix(s, "zenws-client$") {
				t.Errorf("client field %q", s)
			}
		} else if l.Level >= zapcore.InfoLevel {
			t.Errorf("line without client field: %s", line)
		}
		if _, ok := m["suppressed"]; ok && l.Level == zapcore.WarnLevel {
			suppressed++
		}
		switch {
		case strings.Contains(l.Message, "connection lost") && l.Level == zapcore.WarnLevel:
			lost++
		case strings.Contains(l.Message, "connection attempt failed") && l.Level == zapcore.WarnLevel:
			failed++
		case l.Message == "stopped" || strings.Contains(l.Message, "stopped"):
			stopped++
			if l.Level != zapcore.InfoLevel || fmt.Sprint(m["reason"]) != "closed by user" {
				t.Errorf("stop line: %v %s %v", l.Level, l.Message, m)
			}
		}
	}
	t.Logf("flapping %v: %d WARN lost lines; 1.5s down: %d WARN failed lines; suppressed-carrying %d; stopped %d", flapDur, lost, failed, suppressed, stopped)
	if failed == 0 {
		byMsg := map[string]int{}
		for _, l := range logs.All() {
			byMsg[l.Level.String()+" "+l.Message]++
		}
		t.Logf("lines by level+message: %v; upgrades %d; health %+v", byMsg, v.upgrades.Load(), c.Health().LastError)
	}
	if lost == 0 || failed == 0 {
		t.Errorf("connection loss (%d) / failed attempts (%d) not at WARN", lost, failed)
	}
	if max := int(flapDur/time.Second) + 4; lost > max {
		t.Errorf("%d WARN 'connection lost' lines in %v: not rate-limited", lost, flapDur)
	}
	if failed > 4 {
		t.Errorf("%d WARN 'connection attempt failed' lines in 1.5 s: not rate-limited", failed)
	}
	if suppressed == 0 {
		t.Error("no WARN line carries a suppressed count")
	}
	if stopped != 1 {
		t.Errorf("stopped lines: %d", stopped)
	}
	_ = errors.New
}
