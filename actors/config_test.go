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
	// 0 keeps a default in the grouped options.
	cfg, err = actors.NewConfig("ws://x", actors.WithInboundQueue(0, 0, actors.DropOldest), actors.WithMessageLimits(0, 0))
	if err != nil || cfg.InboundQueueSize != 4096 || cfg.InboundQueueBytes != 0 || cfg.Overflow != actors.DropOldest ||
		cfg.MessageTimeout != 0 || cfg.MaxFragments != 0 {
		t.Fatalf("WithInboundQueue(0, 0, DropOldest), WithMessageLimits(0, 0): %+v, %v", cfg, err)
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
		{"ws://x", actors.WithHeartbeatMisses(0), "HeartbeatMisses"},
		{"ws://x", actors.WithServerPingWindow(-1), "ServerPingWindow"},
		{"ws://x", actors.WithReadLimit(0), "ReadLimit"},
		{"ws://x", actors.WithWriteTimeout(0), "WriteTimeout"},
		{"ws://x", actors.WithLatencyBufferSize(0), "LatencyBufferSize"},
		{"ws://x", actors.WithLatencyBufferSize(1 << 40), "LatencyBufferSize"}, // 8 TiB on the first sample
		{"ws://x", actors.WithHostDialRate(math.NaN(), 5), "HostDialRate"},
		{"ws://x", actors.WithHostDialRate(math.Inf(1), 5), "HostDialRate"},
		{"ws://x", actors.WithInboundQueue(-1, 0, actors.DropNewest), "InboundQueueSize"},
		{"ws://x", actors.WithInboundQueue(10, 0, actors.OverflowPolicy(9)), "Overflow"},
		{"ws://x", actors.WithCloseWait(0), "CloseWait"},
		// Durations below their documented minimums (issue 12 item 17).
		{"ws://x", actors.WithTimeout(time.Nanosecond), "Timeout"},
		{"ws://x", actors.WithWriteTimeout(time.Nanosecond), "WriteTimeout"},
		{"ws://x", actors.WithRequestTimeout(time.Nanosecond), "RequestTimeout"},
		{"ws://x", actors.WithRetryDelay(time.Nanosecond), "RetryDelay"},
		{"ws://x", actors.WithHeartbeat(actors.HeartbeatPingPong, time.Nanosecond), "HeartbeatInterval"},
		{"ws://x", actors.WithHeartbeat(actors.HeartbeatDeribit, time.Millisecond), "HeartbeatInterval"},
		{"ws://x", actors.WithMaxConnectionAge(24), "MaxConnectionAge"},
		{"ws://x", actors.WithCloseWait(time.Nanosecond), "CloseWait"},
		{"ws://x", actors.WithStableAfter(time.Millisecond), "StableAfter"},
		{"ws://x", actors.WithHostDialRate(-1, 10), "HostDialRate"},
		{"ws://x", actors.WithHostDialRate(10, 0), "HostDialBurst"},
		{"ws://x", func(c *actors.Config) { c.Handler = func(actors.Inbound) {}; c.Subscriber = actor.NewPID("a", "b") }, "Handler"},
	}
	for _, c := range cases {
		_, err := actors.NewConfig(c.url, c.opt)
		var ce *actors.ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field || !errors.Is(err, actors.ErrInvalidConfig) {
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

// FuzzNewConfig: no URL or numbers may panic validation.
func FuzzNewConfig(f *testing.F) {
	f.Add("wss://test.deribit.com/ws/api/v2", int64(time.Second), 3, int64(30*time.Second))
	f.Add("ws://[::1]:80/x?y=z", int64(0), -1, int64(-5))
	f.Add("%", int64(1), 0, int64(1))
	f.Fuzz(func(t *testing.T, url string, delay int64, retries int, maxBackoff int64) {
		cfg, err := actors.NewConfig(url, actors.WithRetryDelay(time.Duration(delay)), actors.WithRetryCount(retries), actors.WithMaxBackoff(time.Duration(maxBackoff)))
		if err == nil && (cfg.RetryDelay < actors.MinRetryDelay || cfg.MaxBackoff < cfg.RetryDelay || cfg.RetryCount < 0 && cfg.RetryCount != actors.RetryForever) {
			t.Fatalf("accepted an invalid config: %+v", cfg)
		}
	})
}

// The documented minimums themselves are accepted, heartbeats can be
// turned off explicitly, and pacing can be turned off.
func TestNewConfigMinimumsAndExplicitOff(t *testing.T) {
	_, err := actors.NewConfig("ws://x",
		actors.WithTimeout(actors.MinTimeout), actors.WithWriteTimeout(actors.MinWriteTimeout),
		actors.WithRequestTimeout(actors.MinRequestTimeout), actors.WithRetryDelay(actors.MinRetryDelay),
		actors.WithMaxBackoff(actors.MinRetryDelay), actors.WithHeartbeat(actors.HeartbeatPingPong, actors.MinHeartbeatInterval),
		actors.WithMaxConnectionAge(actors.MinMaxConnectionAge), actors.WithCloseWait(actors.MinCloseWait),
		actors.WithStableAfter(actors.MinStableAfter), actors.WithHostDialRate(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := actors.NewConfig("ws://x", actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	if err != nil || cfg.Heartbeat != actors.HeartbeatDisabled {
		t.Fatalf("explicit off: %v %v", cfg.Heartbeat, err)
	}
}
