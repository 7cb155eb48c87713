package review13d

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
)

// chain records every StateChange a client's observer sees.
type chain struct {
	mu  sync.Mutex
	chs []actors.StateChange
}

func (c *chain) add(s actors.StateChange) { c.mu.Lock(); c.chs = append(c.chs, s); c.mu.Unlock() }

func (c *chain) get() []actors.StateChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]actors.StateChange(nil), c.chs...)
}

func newSys(t *testing.T) *actor.ActorSystem {
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	return sys
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a client with fast backoff and registers Close.
func dial(t *testing.T, url string, ch *chain, opts ...actors.Option) *actors.Client {
	t.Helper()
	base := []actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(100 * time.Millisecond),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryCount(actors.RetryForever),
		actors.WithRequestTimeout(3 * time.Second), actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }),
	}
	if ch != nil {
		base = append(base, actors.WithStateObserver(ch.add))
	}
	c, err := actors.Connect(ctxT(t, 10*time.Second), newSys(t), url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) bool {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if f() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("not within %v: %s", d, what)
	return false
}

func chanState(c *actors.Client, name string) actors.ChannelState {
	for _, s := range c.Health().Channels {
		if s.Channel == name {
			return s.State
		}
	}
	return 0
}
