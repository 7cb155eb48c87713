package bench

import (
	"context"
	"errors"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
)

// poolSize is the number of connections behind one balanced Conn.
const poolSize = 4

// balancerLib is the zenws balancer: each Conn is a router over poolSize
// zenws clients to the same server, and every operation goes through the
// pick.
type balancerLib struct{ sys *actor.ActorSystem }

func openBalancer() (Library, error) {
	return &balancerLib{sys: actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))}, nil
}

func (l *balancerLib) Dial(ctx context.Context, url string, recv func()) (Conn, error) {
	var p balancedConn
	for i := 0; i < poolSize; i++ {
		c, err := actors.Connect(ctx, l.sys, url,
			actors.WithLogger(zap.NewNop()),
			actors.WithHeartbeat(actors.HeartbeatDisabled, 0), // as for the zenws contender
			actors.WithRetryDelay(RetryDelay),
			func(c *actors.Config) { c.StableAfter = StableAfter },
			func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 0, 0 }, // as for the zenws contender
			actors.WithRetryCount(10),
			actors.WithHandler(func(actors.Inbound) { recv() }))
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		p.clients = append(p.clients, c)
	}
	pids := make([]*actor.PID, len(p.clients))
	for i, c := range p.clients {
		pids[i] = c.PID()
	}
	b, err := balancer.New(l.sys, balancer.WithDiscovery(func() []*actor.PID { return pids }))
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	p.b = b
	return &p, nil
}

func (l *balancerLib) Close() { l.sys.Shutdown() }

type balancedConn struct {
	b       *balancer.Balancer
	clients []*actors.Client
}

func (p *balancedConn) Send(ctx context.Context, data []byte) error { return p.b.Send(ctx, data) }

// Call is retry-safe: the harness's request reads and changes nothing.
func (p *balancedConn) Call(ctx context.Context) error {
	_, err := p.b.Call(ctx, callMethod, nil, balancer.RetrySafe())
	return err
}

func (p *balancedConn) Lost() <-chan struct{} { return nil }

// Close closes the clients first, so that their last health pushes reach a
// live router rather than Proto.Actor's dead letters.
func (p *balancedConn) Close() error {
	var errs []error
	for _, c := range p.clients {
		errs = append(errs, c.Close())
	}
	if p.b != nil {
		errs = append(errs, p.b.Stop())
	}
	return errors.Join(errs...)
}
