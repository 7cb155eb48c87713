package ratelimit

import (
	"strings"
	"time"
)

// DeribitTier is a Deribit matching-engine rate limit: sustained requests a
// second and the burst. Deribit assigns a sub-account its tier hourly from
// its 7-day volume; /private/get_account_summary reports the account's real
// limits, which may differ from these published defaults.
type DeribitTier struct {
	Rate  float64
	Burst int
}

// Deribit's published matching-engine tiers (support.deribit.com, "Rate
// Limits"). DeribitTier4 is an account's default.
var (
	DeribitTier1 = DeribitTier{Rate: 30, Burst: 100} // over USD 25 million 7-day volume
	DeribitTier2 = DeribitTier{Rate: 20, Burst: 50}  // over USD 5 million
	DeribitTier3 = DeribitTier{Rate: 10, Burst: 30}  // over USD 1 million
	DeribitTier4 = DeribitTier{Rate: 5, Burst: 20}   // the rest
)

// Deribit's non-matching-engine credit rule: every request costs 500
// credits from a pool of at most 50,000 that refills 10,000 a second (20
// requests a second sustained, bursts of 100). Heartbeat replies and
// public/test count.
const (
	DeribitCreditCost     = 500
	DeribitCreditCapacity = 50_000
	DeribitCreditRefill   = 10_000
)

// deribitMatching lists Deribit's matching-engine methods; every other
// request draws on the credit pool.
var deribitMatching = map[string]bool{
	"private/buy":                        true,
	"private/sell":                       true,
	"private/edit":                       true,
	"private/edit_by_label":              true,
	"private/cancel":                     true,
	"private/cancel_all":                 true,
	"private/cancel_all_by_instrument":   true,
	"private/cancel_all_by_currency":     true,
	"private/cancel_all_by_kind_or_type": true,
	"private/cancel_by_label":            true,
	"private/cancel_quotes":              true,
	"private/close_position":             true,
	"private/verify_block_trade":         true,
	"private/execute_block_trade":        true,
	"private/mass_quote":                 true,
	"private/move_positions":             true,
}

// DeribitMatchingEngine reports whether method is one of Deribit's
// matching-engine requests (orders, edits, cancels), which have their own
// per-tier limit instead of costing credits.
func DeribitMatchingEngine(method string) bool { return deribitMatching[method] }

// DeribitLimits are a Deribit sub-account's limits: the credit pool for
// non-matching-engine requests and the matching-engine tier. Deribit may
// grant an account other values than the published defaults
// (/private/get_account_summary reports them); leaving some headroom below
// the venue's figures absorbs network jitter between the two buckets.
type DeribitLimits struct {
	Capacity int // credits the pool holds
	Refill   int // credits a second
	Cost     int // credits a request costs
	Matching DeribitTier
}

// Deribit returns a Limiter with Deribit's published rules for one
// sub-account and matching-engine tier: see DeribitFor.
func Deribit(tier DeribitTier) *Limiter {
	return DeribitFor(DeribitLimits{Capacity: DeribitCreditCapacity, Refill: DeribitCreditRefill, Cost: DeribitCreditCost, Matching: tier})
}

// DeribitFor returns a Limiter with Deribit's rules and the given limits
// (token buckets, as Deribit counts both: credits and the matching-engine
// tier refill continuously up to their burst):
// bucket 0 is the credit pool (every request but the matching-engine ones
// costs Cost), bucket 1 the matching-engine limit (one token a request).
// Deribit counts per sub-account across all its connections, so share the
// Limiter between every client of the account. WebSocket control frames
// are free. It panics on limits that are not positive (a programming
// error).
func DeribitFor(lim DeribitLimits) *Limiter {
	cost := lim.Cost
	return must(New("deribit", func(f Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		if DeribitMatchingEngine(method(f.Data)) {
			return 1, 1
		}
		return 0, cost
	},
		Bucket{Name: "credits", Rate: float64(lim.Refill), Burst: lim.Capacity},
		Bucket{Name: "matching engine", Rate: lim.Matching.Rate, Burst: lim.Matching.Burst},
	))
}

// Binance's published WebSocket rules for spot streams.
const (
	BinanceMessagesPerSecond = 5               // incoming messages per connection in any rolling second, pings and pongs included
	BinanceConnectionsPer    = 300             // new connections per BinanceConnectionWindow per IP
	BinanceConnectionWindow  = 5 * time.Minute // the window of BinanceConnectionsPer
)

// binanceHeadroom widens Binance's one-second window on our side: Binance
// counts messages as they arrive, and delivery can bring two that left
// more than a second apart closer together (a delayed segment, a stalled
// reader). 200 ms keeps 5 in any arriving second through that much jitter,
// at a sustained 4.2 messages a second.
const binanceHeadroom = 200 * time.Millisecond

// Binance returns a Limiter with Binance's per-connection rule as Binance
// counts it: at most 5 messages in any rolling second (requests, pings,
// pongs and other control frames all count), a sliding window of 1.2 s on
// our side (the 0.2 s absorb delivery jitter). A burst of 5 goes out at
// once, the 6th a window after the 1st. The limit is per connection: give
// each client its own. Futures and options allow 10 a second: build that
// with New and a Bucket{Burst: 10, Window: ...}.
func Binance() *Limiter {
	return must(New("binance", func(Frame) (int, int) { return 0, 1 },
		Bucket{Name: "messages", Burst: BinanceMessagesPerSecond, Window: time.Second + binanceHeadroom}))
}

// BinanceConnections returns a Limiter for connection attempts from one IP:
// at most 300 in any 5 minutes (a sliding window, as Binance counts them; a
// token bucket refilling one a second would let up to 599 into one 5
// minutes). Share it between every client that dials from the same IP
// (Config.DialLimiter) so that a reconnect storm of a whole pool cannot
// get the IP banned.
func BinanceConnections() *Limiter {
	return must(New("binance connections", func(Frame) (int, int) { return 0, 1 },
		Bucket{Name: "connection attempts", Burst: BinanceConnectionsPer, Window: BinanceConnectionWindow}))
}

// PrefixCost is a Classifier for a single bucket that prices frames by the
// longest matching prefix of their JSON-RPC method; frames with no method
// or no matching prefix cost def. Control frames are free.
func PrefixCost(costs map[string]int, def int) Classifier {
	return func(f Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		m, best, n := method(f.Data), -1, def
		for p, c := range costs {
			if len(p) > best && strings.HasPrefix(m, p) {
				best, n = len(p), c
			}
		}
		return 0, n
	}
}
