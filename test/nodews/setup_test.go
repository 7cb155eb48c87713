package nodews

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// A Node venue that accepts and then never reads (its socket paused, so
// pings go unanswered) while the connect hook waits on it: each such
// connection is a failed attempt, and the client gives up after its budget,
// 3 connections for RetryCount 2 (before: it redialled at once without end).
func TestHeartbeatMissDuringSetupWithNodeWS(t *testing.T) {
	url := venue(t)
	hook := func(ctx context.Context, _ *actors.Setup) error { <-ctx.Done(); return ctx.Err() }
	_, err := actors.Connect(testutil.Context(t, 30*time.Second), testutil.NewSystem(t), url+"deaf",
		actors.WithConnectHook(hook), actors.WithHeartbeat(actors.HeartbeatPingPong, 20*time.Millisecond),
		actors.WithRetryCount(2), actors.WithRetryDelay(time.Millisecond), actors.WithRequestTimeout(20*time.Second))
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || !errors.Is(err, actors.ErrHeartbeatTimeout) {
		t.Fatalf("Connect = %v; want a *GiveUpError after heartbeat timeouts", err)
	}
	c, _ := connect(t, url)
	res, err := c.Call(ctx(t), "stats", nil)
	var st struct{ Deaf int }
	if err != nil || json.Unmarshal(res, &st) != nil {
		t.Fatalf("stats %s: %v", res, err)
	}
	if st.Deaf != 3 {
		t.Fatalf("the venue accepted %d connections that went silent; want 3 (the first dial and 2 retries)", st.Deaf)
	}
}
