package main

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

// The table shows what the strategy in use compares (PeakEWMA's load, not
// HealthScore's score), the client's last error with its secrets redacted,
// and why the balancer does not pick a client.
func TestTableShowsTheStrategysFigureLastErrorAndWhyNotPicked(t *testing.T) {
	const secret = "s3cr3t-api-key-value"
	sys := testutil.NewSystem(t)
	sup, err := supervision.Start(sys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Stop() })
	d := &demo{sys: sys, sup: sup, names: map[string]string{}}
	d.lastFault.Store("none yet")
	var srvs []*wstest.Server
	for i := 0; i < 2; i++ {
		srv := wstest.NewServer(wstest.WithDeribit())
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
		c, err := sup.StartClient(testutil.Context(t, 10*time.Second), srv.URL()+"?api_key="+secret,
			actors.WithRetryDelay(50*time.Millisecond), actors.WithMaxBackoff(100*time.Millisecond), actors.WithRetryCount(1000))
		if err != nil {
			t.Fatal(err)
		}
		d.clients = append(d.clients, c)
		d.names[c.PID().Id] = []string{"c1", "c2"}[i]
	}
	d.notif = make([]atomic.Int64, len(d.clients))
	if d.bal, err = sup.Balancer(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.bal.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // round trips for a measured load
		if _, err := d.bal.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	srvs[1].RefuseHandshakes(503) // c2 cannot come back: its dials fail
	srvs[1].DropAll()
	testutil.Eventually(t, 5*time.Second, "c2 not picked, with a last error", func() bool {
		s := d.snapshot(time.Second)
		last := s.rows[1].health.LastError
		return strings.HasPrefix(s.rows[1].notPicked, "not connected") && last != nil && strings.Contains(last.Error(), "503")
	})
	if last := d.clients[1].Health().LastError.Error(); !strings.Contains(last, "api_key") {
		t.Fatalf("the dial error does not name the URL (%q): nothing to redact", last)
	}
	var live, plain bytes.Buffer
	s := d.snapshot(time.Second)
	(&table{out: &live, live: true}).draw(s)
	(&table{out: &plain}).draw(s)
	for name, out := range map[string]string{"live": live.String(), "plain": plain.String()} {
		if strings.Contains(out, secret) {
			t.Fatalf("%s table shows the secret:\n%s", name, out)
		}
		if !strings.Contains(out, "c2 ") || !strings.Contains(out, "not connected (") {
			t.Fatalf("%s table does not say why c2 is not picked:\n%s", name, out)
		}
		if want := lastError(s.rows[1].health.LastError, 40); !strings.Contains(out, want[:20]) {
			t.Fatalf("%s table lacks c2's last error %q:\n%s", name, want, out)
		}
	}
	if s.figure != "load" || !strings.Contains(live.String(), " load ") || strings.Contains(live.String(), " score ") {
		t.Fatalf("the default strategy compares load; the table shows %q:\n%s", s.figure, live.String())
	}
	if s.rows[0].figure == "-" || s.rows[0].notPicked != "" {
		t.Fatalf("c1: load %q, not picked %q", s.rows[0].figure, s.rows[0].notPicked)
	}
	// HealthScore's figure is its score.
	if got := figure(balancer.HealthScore.String(), balancer.ClientHealth{Score: 85}); got != "85" || figureName(balancer.HealthScore.String()) != "score" {
		t.Fatalf("health-score figure %q", got)
	}
	t.Logf("\n%s", live.String())
}
