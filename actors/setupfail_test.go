package actors_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
)

// A heartbeat that goes unanswered while the connect pipeline runs (a
// connect hook waiting on a venue that accepted and then went silent) ends
// that connection as a failed attempt: it climbs the backoff and spends the
// retry budget. Before, it counted as the loss of a working connection, and
// on a first connect (never up: "stable") that reset the budget and
// redialled at once, without end.
func TestHeartbeatMissDuringSetupIsAFailedAttempt(t *testing.T) {
	var accepted atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		accepted.Add(1)
		<-stop // never reads: its pings are never answered
	}))
	defer srv.Close()
	defer close(stop)
	hook := func(ctx context.Context, _ *actors.Setup) error { <-ctx.Done(); return ctx.Err() }
	_, err := actors.Connect(ctxT(t, 30*time.Second), newSystem(t), "ws"+strings.TrimPrefix(srv.URL, "http"),
		actors.WithConnectHook(hook), actors.WithHeartbeat(actors.HeartbeatPingPong, 20*time.Millisecond),
		actors.WithRetryCount(2), actors.WithRetryDelay(time.Millisecond), actors.WithRequestTimeout(20*time.Second))
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || !errors.Is(err, actors.ErrHeartbeatTimeout) {
		t.Fatalf("Connect = %v; want a *GiveUpError after heartbeat timeouts", err)
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("the venue accepted %d connections; want 3 (the first dial and 2 retries)", n)
	}
}
