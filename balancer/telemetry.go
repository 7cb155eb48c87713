package balancer

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// WithMeterProvider turns on OpenTelemetry metrics for the balancer, on
// mp's meter "github.com/zenws/zenws/balancer", with the attribute
// zenws.balancer (the router's PID id): zenws.balancer.failovers (counter:
// operations tried again on another client), zenws.balancer.no_connections
// (counter: ErrNoConnections answers) and zenws.balancer.eligible (gauge:
// clients that may be picked). Off by default.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.meters = mp } }

// startTelemetry registers the balancer's observations; the returned
// function ends them.
func (sh *shared) startTelemetry(id string) func() {
	mp := sh.o.meters
	if mp == nil {
		return func() {}
	}
	m := mp.Meter("github.com/zenws/zenws/balancer")
	failovers, err1 := m.Int64ObservableCounter("zenws.balancer.failovers", metric.WithDescription("operations tried again on another client"))
	noConns, err2 := m.Int64ObservableCounter("zenws.balancer.no_connections", metric.WithDescription("operations refused with ErrNoConnections"))
	eligible, err3 := m.Int64ObservableGauge("zenws.balancer.eligible", metric.WithDescription("clients that may be picked"))
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			sh.o.logger.Error("metrics disabled", zap.Error(err))
			return func() {}
		}
	}
	attrs := metric.WithAttributes(attribute.String("zenws.balancer", id))
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(failovers, int64(sh.failovers.Load()), attrs)
		o.ObserveInt64(noConns, int64(sh.noConns.Load()), attrs)
		o.ObserveInt64(eligible, int64(len(sh.table.Load().eligible)), attrs)
		return nil
	}, failovers, noConns, eligible)
	if err != nil {
		sh.o.logger.Error("metrics disabled", zap.Error(err))
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}
