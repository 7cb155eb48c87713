package opspage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
)

// Handler is the operator's page of one or more balancers. It is safe for
// concurrent use; each request reads the balancers' published tables.
type Handler struct {
	sys   *actor.ActorSystem
	names []string // sorted
	pools map[string]*balancer.Balancer
	o     options
}

// Option configures a Handler.
type Option func(*options)

type options struct {
	minHealthy int
	labels     []string
	poolReady  bool
	checks     []check
	refresh    time.Duration
	liveWait   time.Duration
}

// WithReadiness sets the readiness rule: at least n healthy clients (see
// the package doc) for each of labels, which must be there even when none
// of their clients is (a label whose clients all vanished is short, not
// forgotten); other labels are listed but not required. With no labels,
// every venue label seen in the pools is required. Default 1, no labels.
// n below 1 is taken as 1.
func WithReadiness(n int, labels ...string) Option {
	return func(o *options) { o.minHealthy, o.labels = max(n, 1), labels }
}

// WithPoolReadiness makes readiness count every client of the pools, the
// other nodes' in a cluster pool (balancer/cluster) too: this node may send
// through any of them. Default: this node's own clients only, so that a
// pod is ready by the connections it holds, and one node's trouble with a
// venue does not take every pod of the pool out of its Service.
func WithPoolReadiness() Option { return func(o *options) { o.poolReady = true } }

// WithAutoRefresh makes the HTML page reload itself every d (a meta
// refresh tag, no JavaScript). Default off; d below 1 s is taken as 1 s.
func WithAutoRefresh(d time.Duration) Option {
	return func(o *options) { o.refresh = max(d, time.Second) }
}

// WithLivenessCheck adds a check to the liveness answer: while fn returns
// an error, livez answers 503 with the check's name and error in
// Liveness.Failed. For a pool across nodes,
// WithLivenessCheck("cluster", agent.Check) has a process that was taken
// out of the cluster (balancer/cluster's Agent.Expelled) restarted by its
// liveness probe, to rejoin under a new member id. fn runs on every livez
// request: keep it quick. A nil fn is ignored.
func WithLivenessCheck(name string, fn func() error) Option {
	return func(o *options) {
		if fn != nil {
			o.checks = append(o.checks, check{name: name, fn: fn})
		}
	}
}

type check struct {
	name string
	fn   func() error
}

// WithLivenessWait bounds how long the liveness check waits for each
// router to answer (Balancer.Refresh). Default 2 s.
func WithLivenessWait(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.liveWait = d
		}
	}
}

// New returns the page of pools (a name for each balancer) on sys, the
// actor system that holds the local clients (their channel statuses are
// read from it). Mount it under a path that ends in a slash:
//
//	http.Handle("/zenws/", opspage.New(sys, map[string]*balancer.Balancer{"orders": b}))
//
// It serves the page at that path, readiness at <path>readyz and liveness at
// <path>livez. Nil balancers are left out.
func New(sys *actor.ActorSystem, pools map[string]*balancer.Balancer, opts ...Option) *Handler {
	h := &Handler{sys: sys, pools: map[string]*balancer.Balancer{},
		o: options{minHealthy: 1, liveWait: 2 * time.Second}}
	for _, opt := range opts {
		opt(&h.o)
	}
	for name, b := range pools {
		if b != nil {
			h.pools[name] = b
			h.names = append(h.names, name)
		}
	}
	sort.Strings(h.names)
	return h
}

// ServeHTTP serves the page, its JSON, a details view, readiness and
// liveness (see the package doc).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	switch {
	case strings.HasSuffix(r.URL.Path, "/readyz"):
		h.serveReady(w)
	case strings.HasSuffix(r.URL.Path, "/livez"):
		h.serveLive(r.Context(), w)
	default:
		h.servePage(w, r)
	}
}

// wantsJSON: ?format=json, or an Accept header asking for JSON and not
// for HTML (a browser asks for HTML).
func wantsJSON(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "json":
		return true
	case "html":
		return false
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// query is what a page request asks for.
type query struct {
	pool          string // "" for every pool
	client        string // a details view of this client (with pool)
	offset, limit int
}

func parseQuery(r *http.Request) (query, error) {
	v := r.URL.Query()
	q := query{pool: v.Get("pool"), client: v.Get("client"), limit: DefaultLimit}
	num := func(name string, dst *int, lo, hi int) error {
		s := v.Get(name)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%s must be a whole number from %d to %d", name, lo, hi)
		}
		*dst = n
		return nil
	}
	if err := num("offset", &q.offset, 0, 1<<31-1); err != nil {
		return q, err
	}
	if err := num("limit", &q.limit, 1, MaxLimit); err != nil {
		return q, err
	}
	if q.client != "" && q.pool == "" {
		return q, errors.New("client needs pool")
	}
	return q, nil
}

// snapshot builds the page's document for q: what both HTML and JSON show.
func (h *Handler) snapshot(q query) (Page, int, error) {
	p := Page{Schema: Schema, GeneratedAt: time.Now().UTC(), Pools: []Pool{}}
	names := h.names
	if q.pool != "" {
		if _, ok := h.pools[q.pool]; !ok {
			return p, http.StatusNotFound, errors.New("no such pool")
		}
		names = []string{q.pool}
	}
	for _, name := range names {
		b := h.pools[name]
		st := b.Stats()
		pool := Pool{Name: clip(name, maxShort), Strategy: st.Strategy, Failovers: st.Failovers,
			NoConnections: st.NoConnections, Offset: q.offset, Limit: q.limit, Clients: []Client{}}
		t := b.PoolHealth()
		sortTable(t)
		summarize(&pool, t)
		if q.client != "" {
			i := slices.IndexFunc(t, func(ch balancer.ClientHealth) bool { return key(ch.PID) == q.client })
			if i < 0 {
				return p, http.StatusNotFound, errors.New("no such client in this pool")
			}
			pool.Offset, pool.Limit = 0, 1
			pool.Clients = append(pool.Clients, clientOf(&t[i], h.local(&t[i]), true))
		} else {
			lo := min(q.offset, len(t))
			hi := min(lo+q.limit, len(t))
			for i := lo; i < hi; i++ {
				pool.Clients = append(pool.Clients, clientOf(&t[i], h.local(&t[i]), false))
			}
		}
		p.Pools = append(p.Pools, pool)
	}
	return p, http.StatusOK, nil
}

// local is the full Health of a local client (with its channels), nil for
// a remote one or one that is gone.
func (h *Handler) local(ch *balancer.ClientHealth) *actors.Health {
	if ch.Remote || h.sys == nil || ch.PID == nil || ch.NotPicked == noHealth {
		return nil
	}
	full := actors.NewClient(h.sys, ch.PID).Health()
	if full.Endpoint == "" { // not a client of this system (gone)
		return nil
	}
	return &full
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	asJSON := wantsJSON(r)
	fail := func(code int, err error) {
		if asJSON {
			writeJSON(w, code, map[string]string{"schema": Schema, "error": err.Error()})
			return
		}
		http.Error(w, err.Error(), code)
	}
	q, err := parseQuery(r)
	if err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	p, code, err := h.snapshot(q)
	if err != nil {
		fail(code, err)
		return
	}
	if asJSON {
		writeJSON(w, http.StatusOK, p)
		return
	}
	var buf bytes.Buffer
	if err := h.render(&buf, p, q); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No script, no external asset: the page's own styles only.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'self'")
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
