package actors_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

func TestMetricsThroughAMeterProvider(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	c := connect(t, newSystem(t), srv.URL(), fast(func(c *actors.Config) { c.MeterProvider = mp })...)
	ctx := ctxT(t, 5*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := c.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnected", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var rtts uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range data.DataPoints {
					got[m.Name] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range data.DataPoints {
					got[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range data.DataPoints {
					rtts += p.Count
				}
			}
		}
	}
	if got["zenws.client.connects"] != 2 || got["zenws.client.reconnects"] != 1 || got["zenws.client.connected"] != 1 {
		t.Fatalf("metrics %v: want 2 connects, 1 reconnect, connected", got)
	}
	if rtts != 3 {
		t.Fatalf("request.duration has %d samples, want 3", rtts)
	}
	// A stopped client stops reporting.
	_ = c.Close()
	rm = metricdata.ResourceMetrics{}
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && len(g.DataPoints) > 0 {
				t.Fatalf("%s still observed after Close", m.Name)
			}
		}
	}
}
