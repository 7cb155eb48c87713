package supervision

import (
	"context"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
)

// Balancer returns the balancer over this supervisor's clients, creating
// it on first use: its discovery is ListClients, read again whenever a
// client starts or stops. It stops with the supervisor; its Stop waits at
// most the supervisor's WithStopWait unless opts say otherwise
// (balancer.WithStopWait). opts configure it when it is created (later
// calls ignore them).
func (s *Supervisor) Balancer(opts ...balancer.Option) (*balancer.Balancer, error) {
	sh := s.shared()
	if sh == nil {
		return nil, ErrNotFound
	}
	if b := sh.bal.Load(); b != nil {
		return b, nil
	}
	sh.balMu.Lock()
	defer sh.balMu.Unlock()
	if b := sh.bal.Load(); b != nil {
		return b, nil
	}
	if sh.balClosed {
		return nil, ErrStopped
	}
	select {
	case <-sh.stopped:
		return nil, ErrStopped
	default:
	}
	all := append([]balancer.Option{balancer.WithDiscovery(s.ListClients), balancer.WithLogger(sh.o.logger), balancer.WithStopWait(sh.o.stopWait)}, opts...)
	b, err := balancer.New(s.sys, all...)
	if err != nil {
		return nil, err
	}
	sh.bal.Store(b)
	return b, nil
}

// closeBalancer marks the supervisor's balancer closed and returns it (nil
// if none was made); no new one can be made afterwards.
func (sh *shared) closeBalancer() *balancer.Balancer {
	sh.balMu.Lock()
	defer sh.balMu.Unlock()
	sh.balClosed = true
	return sh.bal.Load()
}

// SendBalanced sends msg through the healthiest of the supervisor's
// clients, failing over as balancer.Balancer.Send does. opts apply to this
// send only (balancer.RetrySafe, balancer.CallMaxAttempts); the balancer's
// own options go to Balancer.
func (s *Supervisor) SendBalanced(ctx context.Context, msg []byte, opts ...balancer.CallOption) error {
	if ctx == nil {
		return actors.ErrNilContext
	}
	b, err := s.Balancer()
	if err != nil {
		return err
	}
	return b.Send(ctx, msg, opts...)
}
