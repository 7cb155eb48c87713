package wstest

import (
	"strings"
	"time"

	"github.com/coder/websocket"
)

// DeribitCredits describes Deribit's rate limits for one sub-account (see
// WithDeribitCredits).
//
// Every JSON-RPC request (any message with a "method", including
// "public/test" heartbeat replies, notifications without an id and requests
// nobody answers) costs Cost credits from a pool that holds at most
// Capacity and refills Refill credits a second, except the matching-engine
// methods (private/buy, private/sell, private/edit, private/edit_by_label,
// private/cancel and every other private/cancel_*, private/close_position,
// private/mass_quote, private/move_positions and the block-trade methods):
// each of those takes one token from a separate bucket of MatchingBurst
// tokens refilled at MatchingRate a second, and costs no credits. Both
// buckets start full. A Cost <= 0 leaves the credit pool unlimited, a
// MatchingBurst <= 0 the matching engine.
//
// The buckets belong to the sub-account: every connection currently
// authenticated with the same client_id shares them (without
// WithDeribitCredentials, the client_id the client sent in public/auth, if
// any). A connection that is not authenticated (or whose token expired)
// draws on buckets of its own. Control frames (pings, pongs) and messages
// that are not JSON-RPC cost nothing.
type DeribitCredits struct {
	Capacity      int     // credits the pool holds at most
	Refill        int     // credits added per second
	Cost          int     // credits per non-matching-engine request
	MatchingRate  float64 // matching-engine requests per second, sustained
	MatchingBurst int     // matching-engine requests in a burst
}

// DefaultDeribitCredits are the venue's published defaults: 500 credits a
// request from a pool of 50,000 refilled 10,000 a second (20 requests a
// second sustained, bursts of 100), and the lowest matching-engine tier, 5
// a second with bursts of 20.
var DefaultDeribitCredits = DeribitCredits{
	Capacity:      50000,
	Refill:        10000,
	Cost:          500,
	MatchingRate:  5,
	MatchingBurst: 20,
}

// TooManyRequestsReason is the close reason used when a request finds too
// few credits. The server first answers the request with error
// CodeTooManyRequests ({"code":10028,"message":"too_many_requests"}, only
// if it has an id) and then closes the connection, as the venue ends the
// session, with close code 1008 (policy violation): a client should treat
// it as a reason to slow down, not as a normal closure.
const TooManyRequestsReason = "too_many_requests"

// matchingPrefixes lists Deribit's matching-engine methods; a name ending
// in "_" matches every method with that prefix.
var matchingPrefixes = []string{
	"private/buy", "private/sell", "private/edit", "private/edit_by_label",
	"private/cancel", "private/cancel_", "private/close_position",
	"private/mass_quote", "private/move_positions",
	"private/verify_block_trade", "private/execute_block_trade",
}

func isMatchingEngine(method string) bool {
	for _, p := range matchingPrefixes {
		if method == p || (strings.HasSuffix(p, "_") && strings.HasPrefix(method, p)) {
			return true
		}
	}
	return false
}

// tokenBucket is a time-based token bucket; a nil bucket never limits.
type tokenBucket struct {
	tokens, capacity, rate float64
	last                   time.Time
}

func newBucket(capacity int, rate float64, limited bool, now time.Time) *tokenBucket {
	if !limited {
		return nil
	}
	return &tokenBucket{tokens: float64(capacity), capacity: float64(capacity), rate: rate, last: now}
}

func (b *tokenBucket) take(n float64, now time.Time) bool {
	if b == nil {
		return true
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.capacity, b.tokens+el*max(b.rate, 0))
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// account holds the rate-limit buckets of one sub-account (or of one
// unauthenticated connection).
type account struct {
	credits  *tokenBucket
	matching *tokenBucket
}

func newAccount(cr *DeribitCredits, now time.Time) *account {
	return &account{
		credits:  newBucket(cr.Capacity, float64(cr.Refill), cr.Cost > 0, now),
		matching: newBucket(cr.MatchingBurst, cr.MatchingRate, cr.MatchingBurst > 0, now),
	}
}

// admit charges a request with the given method to c's account and reports
// whether it may be served. It always admits without WithDeribitCredits.
func (s *Server) admit(c *Conn, method string) bool {
	cr := s.cfg.credits
	if cr == nil {
		return true
	}
	id := c.account()
	now := time.Now()
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	var a *account
	if id == "" {
		if c.ownAccount == nil {
			c.ownAccount = newAccount(cr, now)
		}
		a = c.ownAccount
	} else {
		if s.d.accounts == nil {
			s.d.accounts = make(map[string]*account)
		}
		if a = s.d.accounts[id]; a == nil {
			a = newAccount(cr, now)
			s.d.accounts[id] = a
		}
	}
	if isMatchingEngine(method) {
		return a.matching.take(1, now)
	}
	return a.credits.take(float64(cr.Cost), now)
}

// rejectTooManyRequests answers req with CodeTooManyRequests and closes the
// connection (see TooManyRequestsReason). It runs on the read goroutine.
func (c *Conn) rejectTooManyRequests(req rpcRequest) {
	c.s.mu.Lock()
	c.s.rateLimited++
	c.s.notifyLocked()
	c.s.mu.Unlock()
	if req.id != nil {
		_ = c.write(c.ctx, websocket.MessageText,
			encodeReply(req.id, nil, &RPCError{Code: CodeTooManyRequests, Message: "too_many_requests"}))
	}
	_ = c.Disconnect(websocket.StatusPolicyViolation, TooManyRequestsReason)
}

// RateLimited returns how many requests were refused with
// CodeTooManyRequests (each also closed its connection).
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited
}
