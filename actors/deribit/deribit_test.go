package deribit_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

const (
	clientID = "zenws-test"
	secret   = "s3cr3t-never-logged"
)

func cfg(g deribit.Grant) deribit.Config {
	return deribit.Config{ClientID: clientID, ClientSecret: secret, Grant: g, Heartbeat: 200 * time.Millisecond, AllowShortHeartbeat: true,
		MinRefresh: deribit.MinMinRefresh} // the simulator's tokens live 1-2 s
}

func fast() []actors.Option {
	return []actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond),
		actors.WithMaxBackoff(100 * time.Millisecond),
	}
}

func connect(t *testing.T, url string, c deribit.Config, opts ...actors.Option) (*actors.Client, *deribit.Session) {
	t.Helper()
	cl, s, err := deribit.Connect(testutil.Context(t, 10*time.Second), testutil.NewSystem(t), url, c, append(fast(), opts...)...)
	if err != nil {
		t.Fatalf("deribit.Connect: %v", err)
	}
	t.Cleanup(func() { s.Close(); _ = cl.Close() })
	return cl, s
}

func TestAuthenticatesArmsHeartbeatAndAnswersTestRequests(t *testing.T) {
	for _, g := range []deribit.Grant{deribit.ClientCredentials, deribit.ClientSignature} {
		t.Run(g.String(), func(t *testing.T) {
			srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
			defer srv.Close()
			c, s := connect(t, srv.URL(), cfg(g))
			ctx := testutil.Context(t, 5*time.Second)
			conns, err := srv.WaitConns(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			sc := conns[0]
			if got := sc.AuthGrants(); !slices.Equal(got, []string{g.String()}) {
				t.Fatalf("server saw grants %v", got)
			}
			if !sc.Authenticated() || !s.Authenticated() {
				t.Fatal("not authenticated after connect")
			}
			if _, err := c.Call(ctx, "private/get_account_summary", map[string]string{"currency": "BTC"}); err != nil {
				t.Fatalf("private call after auth: %v", err)
			}
			// public/set_heartbeat armed the server's test_requests; the
			// client answers them.
			testutil.Eventually(t, 5*time.Second, "test_requests answered", func() bool { return sc.TestResponses() >= 2 })
			if sc.HeartbeatTimedOut() {
				t.Fatal("a test_request went unanswered")
			}
			if g == deribit.ClientSignature {
				for _, m := range sc.Received() {
					if bytes.Contains(m.Data, []byte(secret)) {
						t.Fatalf("the secret went on the wire with client_signature: %s", m.Data)
					}
				}
			}
		})
	}
}

func TestWrongSecretIsFatal(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	bad := cfg(deribit.ClientCredentials)
	bad.ClientSecret = "wrong"
	_, _, err := deribit.Connect(testutil.Context(t, 10*time.Second), testutil.NewSystem(t), srv.URL(), bad, fast()...)
	var fe *actors.FatalError
	var rpc *actors.RPCError
	if !errors.As(err, &fe) || !errors.As(err, &rpc) || rpc.Code != deribit.CodeInvalidCredentials {
		t.Fatalf("Connect with a wrong secret: %v, want a *FatalError wrapping RPC error 13004", err)
	}
	testutil.Eventually(t, 5*time.Second, "the server saw the attempt", func() bool { return srv.TotalConns() >= 1 })
	time.Sleep(100 * time.Millisecond)
	if n := srv.TotalConns(); n != 1 {
		t.Fatalf("%d connections: wrong credentials must not be retried", n)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret), wstest.WithDeribitTokenTTL(2*time.Second))
	defer srv.Close()
	c2 := cfg(deribit.ClientCredentials)
	c2.RefreshAt = 0.5
	c, s := connect(t, srv.URL(), c2)
	ctx := testutil.Context(t, 10*time.Second)
	testutil.Eventually(t, 8*time.Second, "two refreshes", func() bool { return s.Stats().Refreshes >= 2 })
	// Past the first token's life, private calls still work on the same
	// connection: the refreshed token is in force.
	if _, err := c.Call(ctx, "private/get_account_summary", map[string]string{"currency": "BTC"}); err != nil {
		t.Fatalf("private call after the first token expired: %v", err)
	}
	conns, _ := srv.WaitConns(ctx, 1)
	grants := conns[0].AuthGrants()
	if len(grants) < 3 || grants[0] != "client_credentials" || grants[1] != "refresh_token" {
		t.Fatalf("grants %v, want client_credentials then refresh_token", grants)
	}
	if h := c.Health(); h.Generation != 1 || s.Stats().RefreshFailures != 0 {
		t.Fatalf("generation %d, refresh failures %d", h.Generation, s.Stats().RefreshFailures)
	}
}

// After a reconnect, in this order: authenticate, arm cancel-on-disconnect,
// arm the heartbeat, backfill (the open orders: no user.trades channel is
// wanted), re-subscribe (private channels need the token), then connected.
func TestReconnectReauthenticatesThenResubscribes(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	c, s := connect(t, srv.URL(), cfg(deribit.ClientSignature))
	ctx := testutil.Context(t, 10*time.Second)
	chs := []string{"ticker.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.raw"}
	if err := c.Subscribe(ctx, chs...); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitConns(ctx, 1); err != nil {
		t.Fatal(err)
	}
	srv.DropAll()
	testutil.Eventually(t, 5*time.Second, "reconnected", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	conns, err := srv.WaitConns(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, m := range conns[0].Received() {
		env, _ := jsonrpc.Peek(m.Data)
		if meth, _ := jsonrpc.String(env.Method); meth != "public/test" {
			methods = append(methods, meth)
		}
	}
	// The backfill (here the open orders alone) runs once the channels
	// are subscribed again, their live notifications held meanwhile.
	want := []string{"public/auth", "private/enable_cancel_on_disconnect", "public/set_heartbeat", "public/subscribe", "private/subscribe", "private/get_open_orders"}
	if len(methods) < len(want) || !slices.Equal(methods[:len(want)], want) {
		t.Fatalf("second connection saw %v, want %v first", methods, want)
	}
	if err := conns[0].WaitSubscribed(ctx, chs...); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Auths != 2 {
		t.Fatalf("auths %d, want one per connection", st.Auths)
	}
}

// Secrets never reach the logs (even at debug) nor a recording.
func TestCredentialsNeverLoggedOrRecorded(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret), wstest.WithDeribitTokenTTL(time.Second))
	defer srv.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	var rec testutil.SyncBuffer
	c2 := cfg(deribit.ClientCredentials)
	c2.Logger = zap.New(core)
	c, s := connect(t, srv.URL(), c2, actors.WithLogger(zap.New(core)), actors.WithRecorder(&rec))
	ctx := testutil.Context(t, 10*time.Second)
	testutil.Eventually(t, 5*time.Second, "a refresh", func() bool { return s.Stats().Refreshes >= 1 })
	if _, err := c.Call(ctx, "public/get_time", nil); err != nil {
		t.Fatal(err)
	}
	conns, _ := srv.WaitConns(ctx, 1)
	var tokens []string
	for _, m := range conns[0].Received() {
		env, _ := jsonrpc.Peek(m.Data)
		if tok, ok := jsonrpc.String(jsonrpc.Field(env.Params, "refresh_token")); ok {
			tokens = append(tokens, tok)
		}
	}
	if len(tokens) == 0 {
		t.Fatal("no refresh seen on the wire")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, e := range logs.All() {
		all.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			all.WriteString(" " + k + "=")
			all.WriteString(fmt.Sprint(v))
		}
		all.WriteString("\n")
	}
	recorded := rec.String()
	if !strings.Contains(recorded, "public/auth") {
		t.Fatal("the recording has no auth request: nothing was checked")
	}
	for _, leak := range append([]string{secret}, tokens...) {
		if strings.Contains(all.String(), leak) {
			t.Fatalf("a secret reached the logs:\n%s", all.String())
		}
		if strings.Contains(recorded, leak) {
			t.Fatalf("a secret reached the recording")
		}
	}
}

// Two clients of one sub-account, sharing one limiter, never get 10028 from
// a venue counting credits per sub-account; without the limiter they do.
func TestSharedLimiterKeepsASubAccountUnderItsCredits(t *testing.T) {
	venue := wstest.DeribitCredits{Capacity: 2000, Refill: 20000, Cost: 500, MatchingRate: 5, MatchingBurst: 20}
	run := func(shared *ratelimit.Limiter) (rateLimited int, callErrs []error) {
		srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret), wstest.WithDeribitCredits(venue))
		defer srv.Close()
		var opts []actors.Option
		if shared != nil {
			opts = append(opts, actors.WithRateLimiter(shared, actors.RateWait))
		}
		cfg10 := cfg(deribit.ClientCredentials)
		cfg10.Heartbeat = 10 * time.Second
		var cls []*actors.Client
		for i := 0; i < 2; i++ {
			c, _ := connect(t, srv.URL(), cfg10, append(opts, actors.WithReconnectOnError(false))...)
			cls = append(cls, c)
		}
		ctx := testutil.Context(t, 20*time.Second)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range cls {
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 10; i++ {
						if _, err := c.Call(ctx, "public/get_time", nil); err != nil {
							mu.Lock()
							callErrs = append(callErrs, err)
							mu.Unlock()
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		return srv.RateLimited(), callErrs
	}
	// 25% under the venue's rate and half its burst: the two buckets run on
	// different clocks, and writes bunch up on the way.
	shared := ratelimit.DeribitFor(ratelimit.DeribitLimits{Capacity: 1000, Refill: 15000, Cost: 500, Matching: ratelimit.DeribitTier4})
	if n, errs := run(shared); n != 0 || len(errs) != 0 {
		t.Fatalf("with a shared limiter: %d refused by the venue, call errors %v", n, errs)
	}
	if shared.Stats().Waited == 0 {
		t.Fatal("the shared limiter never made a call wait: the test did not load it")
	}
	n, errs := run(nil)
	if n == 0 || len(errs) == 0 {
		t.Fatalf("without a limiter the venue refused %d and %d calls failed: the test cannot tell", n, len(errs))
	}
	var rpc *actors.RPCError
	saw := false
	for _, err := range errs {
		if errors.As(err, &rpc) && rpc.Code == deribit.CodeTooManyRequests {
			saw = true
		}
	}
	if !saw {
		t.Fatalf("no call failed with 10028: %v", errs)
	}
}

func TestNewSessionValidates(t *testing.T) {
	for name, c := range map[string]deribit.Config{
		"id without secret":   {ClientID: "x"},
		"secret without id":   {ClientSecret: "x"},
		"unknown grant":       {ClientID: "x", ClientSecret: "y", Grant: 9},
		"heartbeat below 10s": {Heartbeat: time.Second},
		"refresh at 1":        {RefreshAt: 1},
	} {
		if _, err := deribit.NewSession(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSessionBelongsToOneClient(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	s, err := deribit.NewSession(deribit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sys := testutil.NewSystem(t)
	ctx := testutil.Context(t, 5*time.Second)
	c1, err := actors.Connect(ctx, sys, srv.URL(), s.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c1.Close() }()
	_, err = actors.Connect(ctx, sys, srv.URL(), s.Options()...)
	var fe *actors.FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("second client on one session: %v, want a fatal error", err)
	}
}

func TestSign(t *testing.T) {
	// HMAC-SHA256("secret", "1700000000000\nabcd\n") computed independently
	// with the simulator's implementation.
	if got, want := deribit.Sign("secret", 1700000000000, "abcd", ""), wstest.DeribitSignature("secret", 1700000000000, "abcd", ""); got != want {
		t.Fatalf("Sign = %s, simulator expects %s", got, want)
	}
}

// The refresh is the client's own traffic: it waits for tokens even when
// the user's policy rejects, and a refresh that could not be made never
// tears the connection down.
func TestRefreshUnderARejectingLimiterKeepsTheConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret), wstest.WithDeribitTokenTTL(2*time.Second))
	defer srv.Close()
	c2 := cfg(deribit.ClientCredentials)
	c2.RefreshAt = 0.5
	lim := ratelimit.Simple(4, 1)
	c, s := connect(t, srv.URL(), c2, actors.WithRateLimiter(lim, actors.RateReject))
	ctx := testutil.Context(t, 10*time.Second)
	deadline := time.Now().Add(2500 * time.Millisecond)
	refused := 0
	for time.Now().Before(deadline) {
		if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"public/get_time","params":{}}`)); errors.Is(err, actors.ErrRateLimited) {
			refused++
		}
		time.Sleep(5 * time.Millisecond)
	}
	if refused == 0 {
		t.Fatal("the user's sends were never refused: the limiter was not loaded")
	}
	if st := s.Stats(); st.Refreshes < 1 {
		t.Fatalf("stats %+v: the refresh did not get through", st)
	}
	if h := c.Health(); h.Reconnects != 0 || h.Generation != 1 {
		t.Fatalf("reconnects %d, generation %d: a paced refresh must not reconnect", h.Reconnects, h.Generation)
	}
	if !s.Authenticated() {
		t.Fatal("not authenticated after the refresh")
	}
}

// The token belongs to its connection: with the connection gone (and the
// venue refusing new ones), the session is not authenticated; a new
// connection is once it has authenticated again. Before, Authenticated()
// was true, with a 15-minute token, while there was no connection.
func TestAuthenticationEndsWithItsConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	c, s := connect(t, srv.URL(), cfg(deribit.ClientCredentials), actors.WithRetryCount(100))
	if !s.Authenticated() || time.Until(s.Expires()) < 10*time.Minute {
		t.Fatalf("authenticated %v, expires in %v: want the 15-minute token", s.Authenticated(), time.Until(s.Expires()))
	}
	waitConn(t, srv)
	srv.RefuseHandshakes(503)
	srv.DropAll()
	testutil.Eventually(t, 5*time.Second, "the connection lost", func() bool { return c.State() != actors.StateConnected })
	if s.Authenticated() || !s.Expires().IsZero() {
		t.Fatalf("authenticated %v (expires %v) with no connection", s.Authenticated(), s.Expires())
	}
	// Still not while the venue refuses new connections.
	testutil.Eventually(t, 5*time.Second, "redials refused", func() bool { return srv.RefusedHandshakes() >= 3 })
	if s.Authenticated() {
		t.Fatal("authenticated while reconnecting")
	}
	srv.RefuseHandshakes(0)
	testutil.Eventually(t, 5*time.Second, "reconnected and authenticated", func() bool {
		return c.State() == actors.StateConnected && s.Authenticated()
	})
	if st := s.Stats(); st.Auths != 2 {
		t.Fatalf("auths %d, want one per connection", st.Auths)
	}
}

func waitConn(t *testing.T, srv *wstest.Server) {
	t.Helper()
	if _, err := srv.WaitConns(testutil.Context(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
}
