package review13b

import (
	"context"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

// Under a supervisor (the documented production setup), a client whose
// hourly budget is spent by its restores: is it restarted back to
// connected, or does the restart carry the spent window?
func TestSupervisedRestoreBudget(t *testing.T) {
	pe := newPeer(t, nil)
	sys := testutil.NewSystem(t)
	sup, err := supervision.Start(sys, supervision.WithRestartBudget(5, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := sup.StartClient(ctx, pe.URL, actors.WithVenue(creds(t)), actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(testutil.Context(t, 10*time.Second), chans(300)...); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = c.Reconnect(rctx)
		rcancel()
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	h := c.Health()
	t.Logf("state %v restarts %d stop %v per-conn %v", h.State, h.Restarts, h.StopReason, pe.perConnCounts())
	// Found by review (fixed) (same cause as TestHourlyLimitRestoreAfterReconnects): even
	// under a supervisor with a restart budget, the client is not back to
	// StateConnected after two reconnects.
	if h.State != actors.StateConnected {
		t.Errorf("supervised client state %v after 2 reconnects (restarts %d)", h.State, h.Restarts)
	}
}
