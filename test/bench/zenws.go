package bench

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
)

// zenwsLib is the zenws actors.Client: one actor system for the run's
// connections, heartbeat off (it is on by default), echoes delivered to a
// handler, reconnecting with RetryDelay as its backoff base and
// StableAfter as its stable period, and the host dial pacer off: the idle
// rows open up to 10,000 connections to one server at once, a measure of
// the client's footprint, not of dial pacing (20 dials/s by default).
type zenwsLib struct{ sys *actor.ActorSystem }

func openZenws() (Library, error) {
	return &zenwsLib{sys: actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))}, nil
}

func (l *zenwsLib) Dial(ctx context.Context, url string, recv func()) (Conn, error) {
	c, err := actors.Connect(ctx, l.sys, url,
		actors.WithLogger(zap.NewNop()),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0),
		actors.WithRetryDelay(RetryDelay),
		func(c *actors.Config) { c.StableAfter = StableAfter },
		func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 0, 0 },
		actors.WithRetryCount(10),
		actors.WithHandler(func(actors.Inbound) { recv() }))
	if err != nil {
		return nil, err
	}
	return zenwsConn{c}, nil
}

func (l *zenwsLib) Close() { l.sys.Shutdown() }

type zenwsConn struct{ c *actors.Client }

func (z zenwsConn) Send(ctx context.Context, data []byte) error { return z.c.Send(ctx, data) }

func (z zenwsConn) Call(ctx context.Context) error {
	_, err := z.c.Call(ctx, callMethod, nil)
	return err
}

func (z zenwsConn) Lost() <-chan struct{} { return nil }

// WaitReady returns once the client is connected again.
func (z zenwsConn) WaitReady(ctx context.Context) error { return z.c.WaitConnected(ctx) }

func (z zenwsConn) Close() error { return z.c.Close() }
