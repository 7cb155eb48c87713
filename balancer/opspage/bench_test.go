package opspage_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/opspage"
	"github.com/zenws/zenws/internal/testutil"
)

// BenchmarkRender renders the page of a real pool of 200 clients on four
// venues, all on one page (?limit=200), as HTML and as JSON; ns/client is
// the cost per row.
func BenchmarkRender(b *testing.B) {
	sys := testutil.NewSystem(b)
	p := newPool(b, sys, []string{"v1", "v2", "v3", "v4"}, 50)
	h := opspage.New(sys, map[string]*balancer.Balancer{"bench": p.bal})
	const clients = 200
	for _, bc := range []struct{ name, query string }{
		{"HTML", "/zenws/?limit=200"},
		{"JSON", "/zenws/?limit=200&format=json"},
		{"Readyz", "/zenws/readyz"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, bc.query, nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/clients, "ns/client")
		})
	}
}
