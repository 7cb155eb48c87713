package deribit_test

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// DEBUG shows authentication and each token refresh, naming the client and
// the connection (before: nothing at any level until a refresh failed).
// TestCredentialsNeverLoggedOrRecorded checks these lines hold no secret.
func TestDebugShowsAuthAndRefresh(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret), wstest.WithDeribitTokenTTL(time.Second))
	defer srv.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	c2 := cfg(deribit.ClientCredentials)
	c2.Logger = zap.New(core)
	c, s := connect(t, srv.URL(), c2)
	testutil.Eventually(t, 5*time.Second, "a refresh", func() bool { return s.Stats().Refreshes >= 1 })
	for _, msg := range []string{"authenticating", "authenticated", "refreshing the token", "token refreshed"} {
		testutil.Eventually(t, 5*time.Second, "a DEBUG line "+msg, func() bool { return logs.FilterMessage(msg).Len() > 0 })
		e := logs.FilterMessage(msg).All()[0]
		if m := e.ContextMap(); e.Level != zapcore.DebugLevel || m["client"] != c.PID().Id || m["generation"] != uint64(1) {
			t.Fatalf("%q at %v: %v", msg, e.Level, m)
		}
	}
}
