package actors_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
)

func TestNewConfigDefaults(t *testing.T) {
	cfg, err := actors.NewConfig("wss://test.deribit.com/ws/api/v2")
	if err != nil {
		t.Fatal(err)
	}
	want := actors.Config{
		Timeout: 5 * time.Second, RetryCount: 3, RetryDelay: time.Second, MaxBackoff: 30 * time.Second,
		ReconnectOnError: true, RestoreSubscriptions: true, RequestTimeout: 30 * time.Second,
		HeartbeatInterval: 30 * time.Second, LatencyBufferSize: 100,
	}
	if cfg.Timeout != want.Timeout || cfg.RetryCount != want.RetryCount || cfg.RetryDelay != want.RetryDelay ||
		cfg.MaxBackoff != want.MaxBackoff || !cfg.ReconnectOnError || !cfg.RestoreSubscriptions ||
		cfg.RequestTimeout != want.RequestTimeout || cfg.HeartbeatInterval != want.HeartbeatInterval ||
		cfg.LatencyBufferSize != want.LatencyBufferSize || cfg.Heartbeat != actors.HeartbeatPingPong || cfg.HeartbeatMisses != 2 ||
		cfg.StableAfter != 10*time.Second || cfg.HostDialRate != 20 || cfg.HostDialBurst != 20 ||
		cfg.ReadLimit != 16<<20 || cfg.InboundQueueSize != 4096 || cfg.Overflow != actors.DropNewest || cfg.Logger == nil {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, _ = actors.NewConfig("ws://x", actors.WithHeartbeat(actors.HeartbeatBinance, 20*time.Second))
	if cfg.ServerPingWindow != time.Minute {
		t.Fatalf("Binance server-ping window default = %v, want 1m", cfg.ServerPingWindow)
	}
	// 0 keeps a default in WithInboundQueue, MessageTimeout and MaxFragments.
	cfg, err = actors.NewConfig("ws://x", actors.WithInboundQueue(0, 0, actors.DropOldest), func(c *actors.Config) { c.MessageTimeout, c.MaxFragments = 0, 0 })
	if err != nil || cfg.InboundQueueSize != 4096 || cfg.InboundQueueBytes != 0 || cfg.Overflow != actors.DropOldest ||
		cfg.MessageTimeout != 0 || cfg.MaxFragments != 0 {
		t.Fatalf("WithInboundQueue(0, 0, DropOldest), MessageTimeout and MaxFragments 0: %+v, %v", cfg, err)
	}
}

func TestNewConfigNamesEachBadField(t *testing.T) {
	cases := []struct {
		url   string
		opt   actors.Option
		field string
	}{
		{"http://example.com", nil, "URL"},
		{"ws://", nil, "URL"},
		{"example.com/ws", nil, "URL"},
		{"::bad", nil, "URL"},
		{"ws://x", actors.WithTimeout(0), "Timeout"},
		{"ws://x", actors.WithRetryCount(-2), "RetryCount"}, // -1 is RetryForever
		{"ws://x", actors.WithRetryDelay(0), "RetryDelay"},
		{"ws://x", actors.WithRetryDelay(-time.Second), "RetryDelay"},
		{"ws://x", actors.WithMaxBackoff(500 * time.Millisecond), "MaxBackoff"},
		{"ws://x", actors.WithRequestTimeout(0), "RequestTimeout"},
		{"ws://x", actors.WithHeartbeat(actors.HeartbeatPingPong, 0), "HeartbeatInterval"},
		{"ws://x", actors.WithHeartbeat(actors.HeartbeatType(42), time.Second), "Heartbeat"},
		{"ws://x", func(c *actors.Config) { c.HeartbeatMisses = 0 }, "HeartbeatMisses"},
		{"ws://x", func(c *actors.Config) { c.ServerPingWindow = -1 }, "ServerPingWindow"},
		{"ws://x", actors.WithReadLimit(0), "ReadLimit"},
		{"ws://x", func(c *actors.Config) { c.WriteTimeout = 0 }, "WriteTimeout"},
		{"ws://x", func(c *actors.Config) { c.LatencyBufferSize = 0 }, "LatencyBufferSize"},
		{"ws://x", func(c *actors.Config) { c.LatencyBufferSize = 1 << 40 }, "LatencyBufferSize"}, // 8 TiB on the first sample
		{"ws://x", func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = math.NaN(), 5 }, "HostDialRate"},
		{"ws://x", func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = math.Inf(1), 5 }, "HostDialRate"},
		{"ws://x", actors.WithInboundQueue(-1, 0, actors.DropNewest), "InboundQueueSize"},
		{"ws://x", actors.WithInboundQueue(10, 0, actors.OverflowPolicy(9)), "Overflow"},
		{"ws://x", func(c *actors.Config) { c.CloseWait = 0 }, "CloseWait"},
		// Durations below their documented minimums (issue 12 item 17).
		{"ws://x", actors.WithTimeout(time.Nanosecond), "Timeout"},
		{"ws://x", func(c *actors.Config) { c.WriteTimeout = time.Nanosecond }, "WriteTimeout"},
		{"ws://x", actors.WithRequestTimeout(time.Nanosecond), "RequestTimeout"},
		{"ws://x", actors.WithRetryDelay(time.Nanosecond), "RetryDelay"},
		{"ws://x", actors.WithHeartbeat(actors.HeartbeatPingPong, time.Nanosecond), "HeartbeatInterval"},
		{"ws://x", actors.WithHeartbeat(actors.HeartbeatDeribit, time.Millisecond), "HeartbeatInterval"},
		{"ws://x", actors.WithMaxConnectionAge(24), "MaxConnectionAge"},
		{"ws://x", func(c *actors.Config) { c.CloseWait = time.Nanosecond }, "CloseWait"},
		{"ws://x", func(c *actors.Config) { c.StableAfter = time.Millisecond }, "StableAfter"},
		{"ws://x", func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = -1, 10 }, "HostDialRate"},
		{"ws://x", func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 10, 0 }, "HostDialBurst"},
		// Tuning fields without an option, each bound through the field.
		{"ws://x", func(c *actors.Config) { c.StableAfter = 0 }, "StableAfter"},
		{"ws://x", func(c *actors.Config) { c.HeartbeatMisses = -1 }, "HeartbeatMisses"},
		{"ws://x", func(c *actors.Config) { c.LatencyBufferSize = 1<<16 + 1 }, "LatencyBufferSize"},
		{"ws://x", func(c *actors.Config) { c.RecordQueue = -1 }, "RecordQueue"},
		{"ws://x", func(c *actors.Config) { c.RecordQueueBytes = -1 }, "RecordQueueBytes"},
		{"ws://x", func(c *actors.Config) { c.MessageTimeout = time.Millisecond }, "MessageTimeout"},
		{"ws://x", func(c *actors.Config) { c.MessageTimeout = -time.Second }, "MessageTimeout"},
		{"ws://x", func(c *actors.Config) { c.MaxFragments = -1 }, "MaxFragments"},
		{"ws://x", func(c *actors.Config) { c.FollowRedirects = -1 }, "FollowRedirects"},
		{"ws://x", func(c *actors.Config) { c.FollowRedirects = 11 }, "FollowRedirects"},
		{"ws://x", func(c *actors.Config) { c.WriteTimeout = -time.Second }, "WriteTimeout"},
		{"ws://x", func(c *actors.Config) { c.CloseWait = -time.Second }, "CloseWait"},
		{"ws://x", func(c *actors.Config) {
			c.Heartbeat, c.HeartbeatInterval, c.ServerPingWindow = actors.HeartbeatBinance, time.Second, time.Millisecond
		}, "ServerPingWindow"},
		{"ws://x", func(c *actors.Config) { c.Handler = func(actors.Inbound) {}; c.Subscriber = actor.NewPID("a", "b") }, "Handler"},
	}
	for _, c := range cases {
		_, err := actors.NewConfig(c.url, c.opt)
		var ce *actors.ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field || !errors.As(err, new(*actors.ConfigError)) {
			t.Errorf("NewConfig(%q, %s) = %v, want a *ConfigError for %s", c.url, c.field, err, c.field)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("error does not name the field: %v", err)
		}
	}
	// Several problems are all reported.
	_, err := actors.NewConfig("ftp://x", actors.WithTimeout(0), actors.WithRetryCount(-2))
	for _, f := range []string{"URL", "Timeout", "RetryCount"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("joined error misses %s: %v", f, err)
		}
	}
}

func TestStateAndKindStrings(t *testing.T) {
	for v, want := range map[string]string{
		actors.StateConnecting.String(): "connecting", actors.StateConnected.String(): "connected",
		actors.StateReconnecting.String(): "reconnecting", actors.StateDisconnected.String(): "disconnected",
		actors.State(9).String(): "State(9)", actors.HeartbeatDeribit.String(): "deribit",
		actors.KindNotification.String(): "notification", actors.DropOldest.String(): "drop_oldest",
	} {
		if v != want {
			t.Errorf("String() = %q, want %q", v, want)
		}
	}
}

// FuzzNewConfig: no URL or numbers may panic validation, and a config
// NewConfig accepts keeps every documented bound, the tuning fields set
// through an option literal included.
func FuzzNewConfig(f *testing.F) {
	f.Add("wss://test.deribit.com/ws/api/v2", int64(time.Second), 3, int64(30*time.Second), int64(5*time.Second), int64(10*time.Second), 2, 100, 20.0, 20, 0, int64(0), 0)
	f.Add("ws://[::1]:80/x?y=z", int64(0), -1, int64(-5), int64(0), int64(0), 0, 0, -1.0, 0, -1, int64(time.Millisecond), 11)
	f.Add("%", int64(1), 0, int64(1), int64(1), int64(1), 1, 1<<16+1, math.NaN(), 1, 1, int64(-1), -1)
	f.Fuzz(func(t *testing.T, url string, delay int64, retries int, maxBackoff, closeWait, stableAfter int64,
		misses, latency int, dialRate float64, dialBurst, recordQueue int, msgTimeout int64, redirects int) {
		cfg, err := actors.NewConfig(url, actors.WithRetryDelay(time.Duration(delay)), actors.WithRetryCount(retries), actors.WithMaxBackoff(time.Duration(maxBackoff)),
			func(c *actors.Config) {
				c.CloseWait, c.StableAfter = time.Duration(closeWait), time.Duration(stableAfter)
				c.HeartbeatMisses, c.LatencyBufferSize = misses, latency
				c.HostDialRate, c.HostDialBurst = dialRate, dialBurst
				c.RecordQueue, c.MessageTimeout, c.FollowRedirects = recordQueue, time.Duration(msgTimeout), redirects
			})
		if err != nil {
			return
		}
		if cfg.RetryDelay < actors.MinRetryDelay || cfg.MaxBackoff < cfg.RetryDelay || cfg.RetryCount < 0 && cfg.RetryCount != actors.RetryForever ||
			cfg.CloseWait < actors.MinCloseWait || cfg.StableAfter < actors.MinStableAfter || cfg.HeartbeatMisses < 1 ||
			cfg.LatencyBufferSize < 1 || cfg.LatencyBufferSize > 1<<16 ||
			!(cfg.HostDialRate >= 0) || math.IsInf(cfg.HostDialRate, 0) || cfg.HostDialRate > 0 && cfg.HostDialBurst < 1 ||
			cfg.RecordQueue < 0 || cfg.MessageTimeout != 0 && cfg.MessageTimeout < 10*time.Millisecond ||
			cfg.FollowRedirects < 0 || cfg.FollowRedirects > 10 {
			t.Fatalf("accepted an invalid config: %+v", cfg)
		}
	})
}

// A Config edited after NewConfig is validated again by Spawn: the
// Config route refuses what the option literal route refuses.
func TestSpawnValidatesAnEditedConfig(t *testing.T) {
	cfg, err := actors.NewConfig("ws://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.CloseWait = 0
	sys := newSystem(t)
	_, err = actors.Spawn(sys.Root, cfg)
	var ce *actors.ConfigError
	if !errors.As(err, &ce) || ce.Field != "CloseWait" {
		t.Fatalf("Spawn with CloseWait 0 = %v, want a *ConfigError for CloseWait", err)
	}
}

// The documented minimums themselves are accepted, heartbeats can be
// turned off explicitly, and pacing can be turned off.
func TestNewConfigMinimumsAndExplicitOff(t *testing.T) {
	_, err := actors.NewConfig("ws://x",
		actors.WithTimeout(actors.MinTimeout), func(c *actors.Config) { c.WriteTimeout = actors.MinWriteTimeout },
		actors.WithRequestTimeout(actors.MinRequestTimeout), actors.WithRetryDelay(actors.MinRetryDelay),
		actors.WithMaxBackoff(actors.MinRetryDelay), actors.WithHeartbeat(actors.HeartbeatPingPong, actors.MinHeartbeatInterval),
		actors.WithMaxConnectionAge(actors.MinMaxConnectionAge), func(c *actors.Config) { c.CloseWait = actors.MinCloseWait },
		func(c *actors.Config) { c.StableAfter = actors.MinStableAfter }, func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 0, 0 })
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := actors.NewConfig("ws://x", actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	if err != nil || cfg.Heartbeat != actors.HeartbeatDisabled {
		t.Fatalf("explicit off: %v %v", cfg.Heartbeat, err)
	}
}
