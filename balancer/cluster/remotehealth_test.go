package cluster_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/balancer/opspage"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// What a node knows of another node's client: its label, endpoint
// (redacted), last error (scrubbed), reconnects, connection time, channel
// counts and whether it is degraded, so that A's balancer picks B's
// degraded client only as it would a local one, and A's operator page
// shows the row as B's page would. Before, a remote row had no label, no
// channels and no last error, and a degraded remote client was picked as
// healthy.
func TestRemoteClientHealthCrossesNodes(t *testing.T) {
	inProcess(t, testRemoteClientHealthCrossesNodes)
}

func testRemoteClientHealthCrossesNodes(t *testing.T) {
	ms := startMembers(t, 1, 1)
	a, b := ms[0], ms[1]

	// B's third client: labelled, its URL carrying a secret, one of its
	// two channels refused until refuse is cleared.
	var refuse atomic.Bool
	refuse.Store(true)
	var calls atomic.Int64
	srv := wstest.NewServer(wstest.WithDeribit(),
		wstest.WithResponder("public/get_time", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			calls.Add(1)
			return time.Now().UnixMilli(), nil
		}))
	defer srv.Close()
	srv.Handle("public/subscribe", func(c *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) {
		var req struct{ Channels []string }
		_ = json.Unmarshal(p, &req)
		if refuse.Load() && slices.Contains(req.Channels, "ticker.BAD") {
			return nil, &wstest.RPCError{Code: 11050, Message: "bad_request"}
		}
		return c.Subscribe(req.Channels...), nil
	})
	const secret = "s3cr3t-api-key"
	c, err := actors.Connect(testutil.Context(t, 10*time.Second), b.sys, srv.URL()+"?api_key="+secret,
		actors.WithLabel("deribit-b"), actors.WithRetryDelay(20*time.Millisecond),
		actors.WithMaxBackoff(100*time.Millisecond), actors.WithRetryCount(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testutil.Context(t, 30*time.Second)
	if err := c.Subscribe(ctx, "ticker.OK"); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "ticker.BAD"); err == nil {
		t.Fatal("ticker.BAD was not refused")
	}
	srv.DropAll() // a last error and a reconnect to show
	testutil.Eventually(t, 10*time.Second, "B's client back, degraded", func() bool {
		h := c.Health()
		return h.State == actors.StateConnected && h.Reconnects >= 1 && h.Degraded && h.LastError != nil
	})
	b.mu.Lock()
	b.pids = append(b.pids, c.PID())
	b.mu.Unlock()

	bal := a.newBalancer(t)
	row := func() *balancer.ClientHealth {
		for _, ch := range bal.PoolHealth() {
			if ch.PID != nil && ch.PID.Id == c.PID().Id {
				return &ch
			}
		}
		return nil
	}
	// The reconnect restores both channels: ticker.BAD is Pending until
	// it is refused again, on B and then in A's copy.
	wantChannels := actors.ChannelCounts{Total: 2, Active: 1, Failed: 1}
	var r *balancer.ClientHealth
	testutil.Eventually(t, 10*time.Second, "B's labelled client in A's table, degraded, with its channels settled", func() bool {
		r = row()
		return r != nil && r.Remote && r.Health.Degraded && r.Health.ChannelCounts == wantChannels
	})
	h := r.Health
	if h.Label != "deribit-b" || h.State != actors.StateConnected || h.Reconnects < 1 || h.ConnectedSince.IsZero() {
		t.Errorf("remote health: label %q state %v reconnects %d connected since %v", h.Label, h.State, h.Reconnects, h.ConnectedSince)
	}
	if h.ChannelCounts != wantChannels {
		t.Errorf("remote channels %+v, want %+v", h.ChannelCounts, wantChannels)
	}
	var remoteErr *cluster.RemoteError
	if !errors.As(h.LastError, &remoteErr) || remoteErr.Text != c.Health().LastError.Error() || !errors.Is(h.LastError, cluster.ErrRemote) {
		t.Errorf("remote last error %v, want B's %v", h.LastError, c.Health().LastError)
	}
	if !strings.HasPrefix(h.Endpoint, "ws://127.0.0.1:") || strings.Contains(h.Endpoint, secret) {
		t.Errorf("remote endpoint %q: want B's redacted URL", h.Endpoint)
	}
	if r.NotPicked == "" {
		t.Errorf("a degraded remote client competes: %+v", r)
	}

	// Picks: healthy clients exist on both nodes, so the degraded one is
	// never picked.
	for i := 0; i < 60; i++ {
		if _, err := bal.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the degraded remote client served %d of 60 calls while healthy ones were left", n)
	}

	// The page on A shows B's row with what B knows, secret-free.
	page := httptest.NewServer(opspage.New(a.sys, map[string]*balancer.Balancer{"p": bal}, opspage.WithReadiness(1, "deribit-b"), opspage.WithPoolReadiness()))
	defer page.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(page.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with the only deribit-b client degraded: %d, want 503", code)
	}
	// ticker.BAD is asked for again with backoff, Pending while it is on
	// its way: the page is read until it shows the refusal.
	var body string
	var found *opspage.Client
	testutil.Eventually(t, 10*time.Second, "B's row on A's page with its refused channel", func() bool {
		_, body = get("/?format=json")
		if strings.Contains(body, secret) {
			t.Fatal("the secret is on the page")
		}
		var doc opspage.Page
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		found = nil
		for i := range doc.Pools[0].Clients {
			if cl := &doc.Pools[0].Clients[i]; strings.HasSuffix(cl.ID, "/"+c.PID().Id) {
				found = cl
			}
		}
		return found != nil && found.Channels != nil && found.Channels.Failed == 1
	})
	switch {
	case found == nil:
		t.Fatalf("B's client is not on A's page: %s", body)
	case !found.Remote || found.Node != b.sys.Address() || found.Label != "deribit-b" || !found.Degraded ||
		found.Channels == nil || found.Channels.Failed != 1 || found.Channels.Active != 1 ||
		found.LastError == "" || found.Endpoint == "" || found.ConnectedSince == nil:
		t.Errorf("B's row on A's page: %+v (channels %+v)", found, found.Channels)
	}
	if _, html := get("/?pool=p&client=" + found.ID); !strings.Contains(html, "on the page of node "+b.sys.Address()) {
		t.Errorf("the details of a remote client do not say where its channel list is:\n%s", html)
	}

	// The refusal lifted: the channel is retried to active, B's client is
	// no longer degraded on A, is ready, and is picked again.
	refuse.Store(false)
	testutil.Eventually(t, 10*time.Second, "B's client healthy in A's table", func() bool {
		r := row()
		return r != nil && !r.Health.Degraded && r.NotPicked == "" && r.Health.ChannelCounts.Active == 2
	})
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("readyz with B's deribit-b client healthy: %d, want 200", code)
	}
	local := httptest.NewServer(opspage.New(a.sys, map[string]*balancer.Balancer{"p": bal},
		opspage.WithReadiness(1, "deribit-b")))
	defer local.Close()
	if resp, err := http.Get(local.URL + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("default (local) readiness on A, which holds no deribit-b client: %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	testutil.Eventually(t, 10*time.Second, "B's client picked again", func() bool {
		_, err := bal.Call(ctx, "public/get_time", nil)
		return err == nil && calls.Load() > 0
	})
}

// A client connected before its node's member started (its PID says
// "nonhost") serves the other nodes' operations. Before, it was offered
// and shown healthy on A, but every operation was answered "no such
// client" (review16 finding 11).
func TestClientStartedBeforeTheMemberServesOthers(t *testing.T) {
	inProcess(t, testClientStartedBeforeTheMemberServesOthers)
}

func testClientStartedBeforeTheMemberServesOthers(t *testing.T) {
	provider := clustertest.NewInMemAgent()
	a := &member{name: "A"}
	b := &member{name: "B", sys: actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))}
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	early, err := actors.Connect(testutil.Context(t, 10*time.Second), b.sys, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	if got := early.PID().Address; got != "nonhost" {
		t.Fatalf("a client of a system without remote has address %q", got)
	}
	ms := []*member{a, b}
	t.Cleanup(func() { stopMembers(t, ms) })
	a.startCluster(provider)
	b.startCluster(provider)
	b.pids = []*actor.PID{early.PID()}
	for _, m := range ms {
		agent, err := cluster.Start(m.c, m.discover, cluster.WithSyncInterval(200*time.Millisecond), cluster.WithFlushInterval(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		m.agent = agent
	}
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 1, eligible: 1, remote: 1, remoteEligible: 1})
	ctx := testutil.Context(t, 10*time.Second)
	for i := 0; i < 20; i++ {
		if _, err := bal.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatalf("call %d through B's early client: %v", i, err)
		}
	}
}

// A node's health goes out in batches of at most maxBatchHealth summaries
// (here 2, for 5 clients: the subscribe answer and later changes in three
// batches, the list in the first): every client still reaches the other
// node's table and carries its calls. Without the bound, the health of
// some 14,000 clients with long errors in one batch would pass gRPC's
// limit and cut the link (review16b, not run).
func TestHealthInBatchesOfBoundedSize(t *testing.T) {
	inProcess(t, testHealthInBatchesOfBoundedSize)
}

func testHealthInBatchesOfBoundedSize(t *testing.T) {
	t.Cleanup(cluster.SetMaxBatchHealth(2)) // runs after the members' cleanup, registered later
	ms := startMembers(t, 0, 5)
	a, b := ms[0], ms[1]
	bal := a.newBalancer(t)
	waitPool(t, bal, poolCount{all: 5, eligible: 5, remote: 5, remoteEligible: 5})
	ctx := testutil.Context(t, 10*time.Second)
	for i := 0; i < 50; i++ {
		if _, err := bal.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	// A change on all five at once: three batches again.
	for _, srv := range b.servers {
		srv.DropAll()
	}
	testutil.Eventually(t, 10*time.Second, "all five reconnected, as A sees them", func() bool {
		pool := bal.PoolHealth()
		for _, ch := range pool {
			if ch.Health.Reconnects < 1 || !ch.Eligible {
				return false
			}
		}
		return len(pool) == 5
	})
}
