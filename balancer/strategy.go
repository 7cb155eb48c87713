package balancer

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// Strategy chooses the client a balanced operation goes through. Two are
// provided: PeakEWMA (the default) and HealthScore (the original's).
type Strategy struct {
	name string
	pick func(cands []*member, now int64, turn *atomic.Uint64) *member
}

// String names the strategy.
func (s Strategy) String() string { return s.name }

// PeakEWMA is the default strategy: the power of two random choices over a
// latency-aware load, as in Finagle's and Linkerd's balancers. Two
// eligible clients are drawn at random and the one with the lower load
// wins, where load = peak EWMA of its round trips * (operations in flight
// + 1), raised by its recent errors.
//
// Why: comparing two random clients instead of scanning all makes a pick
// cost the same with 10 or 1,000 clients and needs no lock over the pool
// (each client's figures have their own); it avoids the herd behaviour of
// always picking the single best client (whose figures lag the traffic
// just sent to it); the peak EWMA believes a slow-down at once and a
// recovery gradually; and multiplying by the work in flight spreads load
// by each client's real capacity. A client that was slow is tried again
// once its cost has decayed (time constant 10 s). Ties are broken at
// random.
var PeakEWMA = Strategy{name: "peak-ewma-p2c", pick: pickP2C}

// HealthScore is ZenWebsocket's own strategy: every eligible client is
// scored 100 - min(pending*10, 40) - min(p99_ms/25, 30) - min(errors*15,
// 20) and the best wins, ties in turn. It scans the whole pool on every
// pick.
var HealthScore = Strategy{name: "health-score", pick: pickScore}

func pickP2C(cands []*member, now int64, _ *atomic.Uint64) *member {
	switch n := len(cands); n {
	case 0:
		return nil
	case 1:
		return cands[0]
	default:
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		a, b := cands[i], cands[j]
		la, lb := a.load(now), b.load(now)
		switch {
		case la < lb:
			return a
		case lb < la:
			return b
		case rand.IntN(2) == 0:
			return a
		}
		return b
	}
}

// pickScore takes the best score; turn (one per balancer) breaks ties in
// turn.
func pickScore(cands []*member, now int64, turn *atomic.Uint64) *member {
	var best []*member
	bestScore := -1.0
	for _, m := range cands {
		switch s := m.score(now); {
		case s > bestScore:
			best, bestScore = append(best[:0], m), s
		case s == bestScore:
			best = append(best, m)
		}
	}
	if len(best) == 0 {
		return nil
	}
	return best[turn.Add(1)%uint64(len(best))]
}

// without returns cands minus excluded (rarely non-empty: failover).
func without(cands, excluded []*member) []*member {
	if len(excluded) == 0 {
		return cands
	}
	out := make([]*member, 0, len(cands))
	for _, m := range cands {
		if !slices.Contains(excluded, m) {
			out = append(out, m)
		}
	}
	return out
}
