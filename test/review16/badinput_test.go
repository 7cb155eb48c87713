package review16

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/balancer/cluster/budget"
	"github.com/zenws/zenws/balancer/cluster/membership"
	"github.com/zenws/zenws/balancer/opspage"
)

// noPanic runs f and fails the test with the panic instead of crashing.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Errorf("%s panicked: %v", what, v)
		}
	}()
	f()
}

// TestBadInputsToTheConstructors: nil systems, nil clusters, empty and
// negative options: an error, never a panic (guard: held up).
func TestBadInputsToTheConstructors(t *testing.T) {
	noPanic(t, "cluster.Start(nil, nil)", func() {
		if a, err := cluster.Start(nil, nil); err == nil {
			t.Errorf("cluster.Start(nil, nil) = %v, nil", a)
		}
	})
	noPanic(t, "membership.Start(nil, nil)", func() {
		if m, err := membership.Start(nil, nil); err == nil {
			t.Errorf("membership.Start(nil, nil) = %v, nil", m)
		}
	})
	sys := quietSystem(t)
	noPanic(t, "membership.Start(sys, nil)", func() {
		if _, err := membership.Start(sys, nil); err == nil {
			t.Errorf("membership.Start(sys, nil): nil error")
		}
	})
	noPanic(t, "membership.Etcd(Node{}) without endpoints", func() {
		if _, err := membership.Etcd(membership.Node{}); err == nil {
			t.Errorf("membership.Etcd without endpoints: nil error")
		}
	})
	noPanic(t, "membership.Automanaged(Node{Port: -1}, -5, -time.Second)", func() {
		if _, err := membership.Automanaged(membership.Node{Port: -1}, -5, -time.Second); err == nil {
			t.Errorf("membership.Automanaged with negative ports: nil error")
		}
	})
	noPanic(t, "budget.Start(nil, nil)", func() {
		if _, err := budget.Start(nil, nil); err == nil {
			t.Errorf("budget.Start(nil, nil): nil error")
		}
	})
	noPanic(t, "budget limiters with bad rules", func() {
		svc, err := budget.Start(sys, holderHere(sys))
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		for _, r := range []budget.Rule{{}, {Key: "k", Window: -time.Second, Burst: 1}, {Key: "k", Window: time.Second, Burst: 0},
			{Key: "k", Window: time.Second, Burst: -3}} {
			if _, err := svc.Limiter(r); err == nil {
				t.Errorf("Limiter(%+v): nil error", r)
			}
		}
	})
	noPanic(t, "opspage.New(nil, nil) served", func() {
		h := opspage.New(nil, nil, opspage.WithReadiness(-1), opspage.WithAutoRefresh(-time.Second), opspage.WithLivenessWait(-1))
		for _, p := range []string{"/zenws/", "/zenws/?format=json", "/zenws/readyz", "/zenws/livez", "/zenws/?pool=x&client=y"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code == 0 || rec.Code >= 500 && !strings.HasSuffix(p, "readyz") {
				t.Errorf("GET %s on an empty page: %d", p, rec.Code)
			}
		}
	})
	noPanic(t, "opspage.New(sys, map with a nil balancer)", func() {
		h := opspage.New(sys, map[string]*balancer.Balancer{"nil": nil})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/zenws/?format=json", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("a page of a nil balancer: %d", rec.Code)
		}
	})
}
