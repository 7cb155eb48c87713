package actors

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/zenws/zenws/internal/sysreg"
)

// instruments are one meter provider's instruments, shared by its clients.
type instruments struct {
	meter                                   metric.Meter
	connects, reconnects, restarts          metric.Int64ObservableCounter
	rotations, notifications, msgsIn, msgsO metric.Int64ObservableCounter
	waits, limited, dropped                 metric.Int64ObservableCounter
	pending, connected                      metric.Int64ObservableGauge
	duration                                metric.Float64Histogram
}

// meterSet is one actor system's instruments by meter provider: kept in
// the system (internal/sysreg), so it goes with the system rather than
// living for the process.
type meterSet struct{ byProvider sync.Map } // metric.MeterProvider -> *instruments

func instrumentsFor(sys *actor.ActorSystem, mp metric.MeterProvider) (in *instruments, err error) {
	set := sysreg.For[*meterSet](sys, "zenws/actors/meters").LoadOrStore("all", &meterSet{})
	cache := true
	func() {
		defer func() {
			if recover() != nil { // a provider that is not comparable: no cache
				cache = false
			}
		}()
		if v, ok := set.byProvider.Load(mp); ok {
			in = v.(*instruments)
		}
	}()
	if in != nil {
		return in, nil
	}
	in, err = newInstruments(mp)
	if err != nil || !cache {
		return in, err
	}
	v, _ := set.byProvider.LoadOrStore(mp, in)
	return v.(*instruments), nil
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter("github.com/zenws/zenws/actors")
	in := &instruments{meter: m}
	var err error
	counter := func(name, desc string) metric.Int64ObservableCounter {
		if err != nil {
			return nil
		}
		var c metric.Int64ObservableCounter
		c, err = m.Int64ObservableCounter(name, metric.WithDescription(desc))
		return c
	}
	in.connects = counter("zenws.client.connects", "successful connections")
	in.reconnects = counter("zenws.client.reconnects", "lost connections the client set out to heal")
	in.restarts = counter("zenws.client.restarts", "restarts by a supervisor")
	in.rotations = counter("zenws.client.rotations", "planned connection rotations")
	in.notifications = counter("zenws.client.notifications", "subscription notifications received")
	in.msgsIn = counter("zenws.client.messages.in", "data frames received")
	in.msgsO = counter("zenws.client.messages.out", "data frames sent")
	in.waits = counter("zenws.client.rate_limit.waits", "frames that waited for the rate limiter")
	in.limited = counter("zenws.client.rate_limited", "frames the rate limiter refused")
	in.dropped = counter("zenws.client.inbound.dropped", "frames dropped by the inbound overflow policy")
	if err != nil {
		return nil, err
	}
	if in.pending, err = m.Int64ObservableGauge("zenws.client.pending", metric.WithDescription("requests waiting for a response")); err != nil {
		return nil, err
	}
	if in.connected, err = m.Int64ObservableGauge("zenws.client.connected", metric.WithDescription("1 while connected")); err != nil {
		return nil, err
	}
	if in.duration, err = m.Float64Histogram("zenws.client.request.duration", metric.WithUnit("s"),
		metric.WithDescription("request round trips"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)); err != nil {
		return nil, err
	}
	return in, nil
}

// telemetry is one client's view of its instruments.
type telemetry struct {
	in    *instruments
	attrs metric.MeasurementOption
	reg   metric.Registration
}

// startTelemetry registers the client's observations; nil when metrics are
// off or the instruments could not be made (logged).
func (d *durable) startTelemetry() *telemetry {
	mp := d.cfg.MeterProvider
	if mp == nil {
		return nil
	}
	in, err := instrumentsFor(d.sys, mp)
	if err != nil {
		d.log.Error("metrics disabled", zap.Error(err))
		return nil
	}
	t := &telemetry{in: in, attrs: metric.WithAttributes(attribute.String("zenws.client", d.pid.Id))}
	t.reg, err = in.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		h := d.healthBrief()
		a := t.attrs.(metric.ObserveOption)
		o.ObserveInt64(in.connects, int64(d.generation.Load()), a)
		o.ObserveInt64(in.reconnects, int64(h.Reconnects), a)
		o.ObserveInt64(in.restarts, int64(h.Restarts), a)
		o.ObserveInt64(in.rotations, int64(h.Rotations), a)
		o.ObserveInt64(in.notifications, int64(d.notifications.Load()), a)
		o.ObserveInt64(in.msgsIn, int64(h.MessagesIn), a)
		o.ObserveInt64(in.msgsO, int64(h.MessagesOut), a)
		o.ObserveInt64(in.waits, int64(h.RateLimitWaits), a)
		o.ObserveInt64(in.limited, int64(h.RateLimited), a)
		o.ObserveInt64(in.dropped, int64(h.InboundDropped), a)
		o.ObserveInt64(in.pending, int64(h.Pending), a)
		connected := int64(0)
		if h.State == StateConnected {
			connected = 1
		}
		o.ObserveInt64(in.connected, connected, a)
		return nil
	}, in.connects, in.reconnects, in.restarts, in.rotations, in.notifications, in.msgsIn, in.msgsO,
		in.waits, in.limited, in.dropped, in.pending, in.connected)
	if err != nil {
		d.log.Error("metrics disabled", zap.Error(err))
		return nil
	}
	return t
}

// roundTrip records a request's round trip.
func (t *telemetry) roundTrip(d time.Duration) {
	if t == nil {
		return
	}
	t.in.duration.Record(context.Background(), d.Seconds())
}

// stop ends the client's observations.
func (t *telemetry) stop() {
	if t != nil && t.reg != nil {
		_ = t.reg.Unregister()
	}
}
