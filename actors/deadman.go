package actors

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/venue"
)

// minDeadMan is the shortest dead man's switch timeout the client uses: a
// renewal every second at most.
const minDeadMan = 2 * time.Second

// deadManHook is the connect hook of a venue.DeadMan: it arms the switch
// on the new connection (an error fails the attempt) and renews it every
// T/2 while that connection is open. Nil when the venue has no switch.
func (c *Config) deadManHook() ConnectHook {
	dm, ok := c.Venue.(venue.DeadMan)
	if !ok {
		return nil
	}
	var after time.Duration
	c.askVenue("DeadManAfter", func() { after = dm.DeadManAfter() })
	if after <= 0 {
		return nil
	}
	after = max(after, minDeadMan)
	return func(ctx context.Context, s *Setup) error {
		if err := dm.ArmDeadMan(ctx, s, after); err != nil {
			return fmt.Errorf("zenws: arming the venue's dead man's switch: %w", err)
		}
		go s.d.renewDeadMan(s, dm, after)
		return nil
	}
}

// renewDeadMan arms the switch again every after/2 on s's connection until
// it ends or the client stops. A failed renewal is logged; the next one
// comes at the next interval (the venue cancels if none arrives in time).
func (d *durable) renewDeadMan(s *Setup, dm venue.DeadMan, after time.Duration) {
	t := time.NewTicker(after / 2)
	defer t.Stop()
	for {
		select {
		case <-s.Done():
			return
		case <-d.stopped:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), min(after/2, d.cfg.RequestTimeout))
		go func() { // the connection ending ends the renewal's wait
			select {
			case <-s.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
		err := guard("venue ArmDeadMan", func() error { return dm.ArmDeadMan(ctx, s, after) })
		cancel()
		if err != nil && !ended(s) {
			d.log.Warn("renewing the venue's dead man's switch failed; trying again at the next interval",
				zap.Uint64("generation", s.gen), zap.Duration("after", after), zap.Error(d.scrub(err)))
		}
	}
}

// ended reports whether s's connection has ended.
func ended(s *Setup) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}
