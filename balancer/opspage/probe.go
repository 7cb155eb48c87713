package opspage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"

	"github.com/zenws/zenws/balancer"
)

// Readiness is the JSON body of <path>readyz.
type Readiness struct {
	Schema     string `json:"schema"`
	Ready      bool   `json:"ready"`
	MinHealthy int    `json:"min_healthy"`
	// Labels: every venue label counted, sorted; a client in several pools
	// is counted once.
	Labels []LabelCount `json:"labels"`
	// Short names the required labels with fewer than MinHealthy healthy
	// clients (those WithReadiness names, or every label when it names
	// none).
	Short []string `json:"short"`
	// Reason is "no clients" when no pool has a client and no label is
	// required: not ready either.
	Reason string `json:"reason,omitempty"`
}

// Readiness counts healthy clients per venue label across every pool.
func (h *Handler) Readiness() Readiness {
	rd := Readiness{Schema: Schema, MinHealthy: h.o.minHealthy, Labels: []LabelCount{}, Short: []string{}}
	counts := map[string]*LabelCount{}
	for _, l := range h.o.labels {
		counts[l] = &LabelCount{Label: clip(l, maxShort)}
	}
	seen := map[string]bool{}
	for _, name := range h.names {
		for _, ch := range h.pools[name].PoolHealth() {
			k := key(ch.PID)
			if seen[k] || ch.Remote && !h.o.poolReady {
				continue
			}
			seen[k] = true
			c := counts[ch.Health.Label]
			if c == nil {
				c = &LabelCount{Label: clip(ch.Health.Label, maxShort)}
				counts[ch.Health.Label] = c
			}
			c.Total++
			if healthy(&ch) {
				c.Healthy++
			}
		}
	}
	for _, c := range counts {
		rd.Labels = append(rd.Labels, *c)
	}
	sort.Slice(rd.Labels, func(i, j int) bool { return rd.Labels[i].Label < rd.Labels[j].Label })
	required := func(string) bool { return true }
	if len(h.o.labels) > 0 {
		required = func(l string) bool { return slices.Contains(h.o.labels, l) }
	}
	for _, c := range rd.Labels {
		if c.Healthy < h.o.minHealthy && required(c.Label) {
			rd.Short = append(rd.Short, c.Label)
		}
	}
	if len(rd.Labels) == 0 {
		rd.Reason = "no clients"
	}
	rd.Ready = len(rd.Short) == 0 && len(rd.Labels) > 0
	return rd
}

// serveReady answers 200 when ready, 503 when a label is short.
func (h *Handler) serveReady(w http.ResponseWriter) {
	rd := h.Readiness()
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// Liveness is the JSON body of <path>livez.
type Liveness struct {
	Schema string `json:"schema"`
	Alive  bool   `json:"alive"`
	// Stuck names the pools whose router did not answer in time, or was
	// stopped.
	Stuck []string `json:"stuck"`
	// Failed lists the checks (WithLivenessCheck) that returned an error,
	// as "name: error".
	Failed []string `json:"failed"`
}

// serveLive answers 200 when every router answers a Refresh within the
// liveness wait, 503 naming the pools that did not. It says nothing of
// the venues: a venue down is a readiness matter, and a restart of this
// process would not bring it back.
func (h *Handler) serveLive(ctx context.Context, w http.ResponseWriter) {
	lv := Liveness{Schema: Schema, Alive: true, Stuck: []string{}, Failed: []string{}}
	for _, c := range h.o.checks {
		if err := safeCheck(c.fn); err != nil {
			lv.Alive = false
			lv.Failed = append(lv.Failed, clip(c.name+": "+err.Error(), maxText))
		}
	}
	for _, name := range h.names {
		c, cancel := context.WithTimeout(ctx, h.o.liveWait)
		err := h.pools[name].Refresh(c)
		cancel()
		if err != nil && (errors.Is(err, balancer.ErrStopped) || ctx.Err() == nil) {
			lv.Alive = false
			lv.Stuck = append(lv.Stuck, clip(name, maxShort))
		}
	}
	code := http.StatusOK
	if !lv.Alive {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, lv)
}

// safeCheck runs a liveness check; a panic in it is its error.
func safeCheck(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panicked: %v", r)
		}
	}()
	return fn()
}
