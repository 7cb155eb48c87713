package review13c

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
)

// A heartbeat unanswered while a connect hook waits is a failed attempt
// (counts against RetryCount), for every kind of heartbeat: a first
// Connect with RetryCount 2 gives up with a *GiveUpError of 3 attempts well
// before the hooks' own deadline (60 s each). (Guard.)
func TestHeartbeatMissInSetupEveryKind(t *testing.T) {
	for _, kind := range []string{"pingpong", "deribit", "binance", "text"} {
		t.Run(kind, func(t *testing.T) {
			pe := newRawPeer(t, func(rc *rawConn) {
				for { // read and ignore everything, pings included
					if _, _, err := rc.readFrame(); err != nil {
						return
					}
				}
			})
			hook := func(ctx context.Context, s *actors.Setup) error { <-ctx.Done(); return ctx.Err() }
			opts := []actors.Option{actors.WithConnectHook(hook), actors.WithRequestTimeout(60 * time.Second),
				actors.WithRetryCount(2), actors.WithRetryDelay(10 * time.Millisecond), actors.WithMaxBackoff(50 * time.Millisecond),
				actors.Option(func(c *actors.Config) { c.HostDialRate = 0 })}
			switch kind {
			case "pingpong":
				opts = append(opts, actors.WithHeartbeat(actors.HeartbeatPingPong, 100*time.Millisecond))
			case "deribit":
				opts = append(opts, actors.WithHeartbeat(actors.HeartbeatDeribit, 100*time.Millisecond))
			case "binance":
				opts = append(opts, actors.WithHeartbeat(actors.HeartbeatBinance, 100*time.Millisecond),
					actors.Option(func(c *actors.Config) { c.ServerPingWindow = 300 * time.Millisecond }))
			case "text":
				v, _ := okx.New(okx.Config{})
				opts = append(opts, actors.WithVenue(v), actors.WithHeartbeat(actors.HeartbeatText, 100*time.Millisecond))
			}
			c, err := actors.Connect(ctxT(t, 15*time.Second), newSys(t), pe.URL, opts...)
			if err == nil {
				_ = c.Close()
				t.Fatal("connected")
			}
			var ge *actors.GiveUpError
			if !errors.As(err, &ge) || ge.Attempts != 3 {
				t.Errorf("Connect: %v, want a *GiveUpError of 3 attempts", err)
			}
		})
	}
}
