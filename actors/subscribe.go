package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/jsonrpc"
)

// SubscriptionOp is subscribe or unsubscribe.
type SubscriptionOp int

// Subscription operations.
const (
	OpSubscribe SubscriptionOp = iota + 1
	OpUnsubscribe
)

// SubscriptionRequest is one request a Dialect makes for some channels.
type SubscriptionRequest struct {
	Op       SubscriptionOp
	Method   string   // e.g. "public/subscribe", "SUBSCRIBE"
	Channels []string // the channels this request covers
}

// Dialect is how an exchange spells subscriptions. Implement it to add a
// venue; DeribitDialect (the default) and BinanceDialect come with zenws.
type Dialect interface {
	// Requests splits channels into the requests op needs (Deribit sends
	// private channels with private/subscribe).
	Requests(op SubscriptionOp, channels []string) []SubscriptionRequest
	// Encode builds the wire message of r with the client's id.
	Encode(r SubscriptionRequest, id uint64) ([]byte, error)
	// Confirmed reads a successful result: the channels of r that the
	// server confirmed. The client keeps only the channels r names (each
	// once): a channel a venue confirms that was never asked for is
	// ignored and counted in Health.ConfirmationsIgnored.
	Confirmed(r SubscriptionRequest, result json.RawMessage) ([]string, error)
}

// DeribitDialect: public/subscribe and public/unsubscribe with
// {"channels":[...]}; channels starting with "user." go through
// private/subscribe and private/unsubscribe (they need authentication). The
// result lists the channels the server applied.
type DeribitDialect struct{}

// Requests implements Dialect.
func (DeribitDialect) Requests(op SubscriptionOp, channels []string) []SubscriptionRequest {
	verb := "subscribe"
	if op == OpUnsubscribe {
		verb = "unsubscribe"
	}
	var public, private []string
	for _, ch := range channels {
		if strings.HasPrefix(ch, "user.") {
			private = append(private, ch)
		} else {
			public = append(public, ch)
		}
	}
	var out []SubscriptionRequest
	if len(public) > 0 {
		out = append(out, SubscriptionRequest{Op: op, Method: "public/" + verb, Channels: public})
	}
	if len(private) > 0 {
		out = append(out, SubscriptionRequest{Op: op, Method: "private/" + verb, Channels: private})
	}
	return out
}

// Encode implements Dialect.
func (DeribitDialect) Encode(r SubscriptionRequest, id uint64) ([]byte, error) {
	return jsonrpc.Build(id, r.Method, map[string][]string{"channels": r.Channels})
}

// Confirmed implements Dialect: the result is the list of channels.
func (DeribitDialect) Confirmed(r SubscriptionRequest, result json.RawMessage) ([]string, error) {
	var got []string
	if err := json.Unmarshal(result, &got); err != nil {
		return nil, fmt.Errorf("zenws: %s result is not a list of channels: %s", r.Method, result)
	}
	return got, nil
}

// BinanceDialect: {"method":"SUBSCRIBE","params":[...],"id":N}, and
// "result":null is success for every channel of the request.
type BinanceDialect struct{}

// Requests implements Dialect. Binance allows 1024 streams per
// connection; requests carry at most 200 each.
func (BinanceDialect) Requests(op SubscriptionOp, channels []string) []SubscriptionRequest {
	method := "SUBSCRIBE"
	if op == OpUnsubscribe {
		method = "UNSUBSCRIBE"
	}
	var out []SubscriptionRequest
	for len(channels) > 0 {
		n := min(len(channels), 200)
		out = append(out, SubscriptionRequest{Op: op, Method: method, Channels: channels[:n]})
		channels = channels[n:]
	}
	return out
}

// Encode implements Dialect.
func (BinanceDialect) Encode(r SubscriptionRequest, id uint64) ([]byte, error) {
	params, err := json.Marshal(r.Channels)
	if err != nil {
		return nil, err
	}
	b := []byte(`{"method":"` + r.Method + `","params":`)
	b = append(b, params...)
	return append(strconv.AppendUint(append(b, `,"id":`...), id, 10), '}'), nil
}

// Confirmed implements Dialect: null confirms every channel.
func (BinanceDialect) Confirmed(r SubscriptionRequest, result json.RawMessage) ([]string, error) {
	if string(result) != "null" {
		return nil, fmt.Errorf("zenws: %s result is %s, want null", r.Method, result)
	}
	return r.Channels, nil
}

// WithDialect selects how subscriptions are spelled. Default
// DeribitDialect.
func WithDialect(d Dialect) Option { return func(c *Config) { c.Dialect = d } }

// WithOnRestoreFailed calls fn when re-subscribing after a reconnect fails
// (the client is connected anyway; the channels stay in the set and are
// tried again after the next reconnect). It runs in order with inbound
// deliveries; a panic is logged.
func WithOnRestoreFailed(fn func(client *actor.PID, channels []string, err error)) Option {
	return func(c *Config) { c.OnRestoreFailed = fn }
}

// subscriptionSet is the confirmed set: it lives in the durable state, so
// it survives reconnects and restarts.
type subscriptionSet struct {
	mu  sync.Mutex
	set map[string]struct{}
}

func (s *subscriptionSet) add(chs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[string]struct{}{}
	}
	for _, ch := range chs {
		s.set[ch] = struct{}{}
	}
}

func (s *subscriptionSet) remove(chs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range chs {
		delete(s.set, ch)
	}
}

func (s *subscriptionSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.set))
	for ch := range s.set {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out
}

// Subscribe subscribes to channels with the configured dialect and waits
// for the server to confirm; confirmed channels join the client's set,
// which is restored after every reconnect and restart (when
// RestoreSubscriptions is on). A dialect may need several requests (Deribit
// sends user.* channels with private/subscribe): they run in order, the
// first failure stops the rest and is returned (a *RPCError for a JSON-RPC
// error), and what earlier requests confirmed stays applied. Deadlines and
// connection errors as for Call.
func (c *Client) Subscribe(ctx context.Context, channels ...string) error {
	return c.subscription(ctx, OpSubscribe, channels)
}

// Unsubscribe unsubscribes from channels and removes them from the set once
// the server confirms.
func (c *Client) Unsubscribe(ctx context.Context, channels ...string) error {
	return c.subscription(ctx, OpUnsubscribe, channels)
}

// Subscriptions returns the confirmed set, sorted.
func (c *Client) Subscriptions() []string {
	d := c.durable()
	if d == nil {
		return nil
	}
	return d.subs.list()
}

func (c *Client) subscription(ctx context.Context, op SubscriptionOp, channels []string) error {
	d := c.durable()
	if d == nil {
		return ErrNotFound
	}
	if len(channels) == 0 {
		return errors.New("zenws: no channels")
	}
	// A rotation waits for changes in flight before it switches over.
	d.subOps.Add(1)
	defer d.subOps.Add(-1)
	// The Dialect is user code: a panic in it is a *PanicError for the
	// caller, never a crash.
	return guard("dialect", func() error { return d.subscribe(ctx, via{}, op, channels, true) })
}

// subscribe runs op for channels as v says. With apply, what the server
// confirms changes the confirmed set (a user's Subscribe or Unsubscribe);
// restores only bring a connection up to the set.
func (d *durable) subscribe(ctx context.Context, v via, op SubscriptionOp, channels []string, apply bool) error {
	dialect := d.cfg.Dialect
	if dialect == nil {
		dialect = DeribitDialect{}
	}
	// Requests run in order; one that fails stops the rest. What earlier
	// requests confirmed stays applied, and the error says so.
	var applied []string
	for i, r := range dialect.Requests(op, channels) {
		if i > 0 {
			v.pace = paceWait // the first is in: pace the rest, do not refuse them
		}
		resp, err := d.call(ctx, v, func(id uint64) ([]byte, error) { return dialect.Encode(r, id) })
		if err == nil {
			env, _ := jsonrpc.Peek(resp)
			var confirmed []string
			if confirmed, err = dialect.Confirmed(r, env.Result); err == nil {
				confirmed = d.onlyAsked(r, confirmed)
				switch {
				case !apply:
				case op == OpSubscribe:
					d.subs.add(confirmed)
				default:
					d.subs.remove(confirmed)
				}
				applied = append(applied, confirmed...)
				continue
			}
		}
		if i > 0 {
			return &PartialError{Applied: applied, Err: err}
		}
		return err
	}
	return nil
}

// onlyAsked keeps the channels of a confirmation that its request named,
// each once: a venue's confirmation is not trusted beyond what was asked, so
// a channel it adds never joins the set (nor any restore), and an
// unsubscribe it confirms for another channel removes nothing. What it
// added is counted (Health.ConfirmationsIgnored) and logged.
func (d *durable) onlyAsked(r SubscriptionRequest, confirmed []string) []string {
	asked := make(map[string]bool, len(r.Channels))
	for _, ch := range r.Channels {
		asked[ch] = false
	}
	kept, extra := make([]string, 0, min(len(confirmed), len(r.Channels))), 0
	for _, ch := range confirmed {
		seen, ok := asked[ch]
		switch {
		case !ok:
			extra++
		case !seen:
			asked[ch] = true
			kept = append(kept, ch)
		}
	}
	if extra > 0 {
		d.unasked.Add(uint64(extra))
		d.log.Warn("the venue confirmed channels the request did not name: ignored",
			zap.String("method", r.Method), zap.Int("asked", len(r.Channels)), zap.Int("not_asked", extra))
	}
	return kept
}

// PartialError is a Subscribe or Unsubscribe that needed several requests
// (Deribit's private channels, Binance's 200 streams a request) and failed
// after some were applied: Applied are confirmed, the rest are not.
//
// Unwrap gives the cause, except when the cause promises that nothing was
// sent (ErrRateLimited, ErrNotConnected): something was, so a PartialError
// never matches those.
type PartialError struct {
	Applied []string
	Err     error
}

// Error implements the error interface.
func (e *PartialError) Error() string {
	return fmt.Sprintf("zenws: partly applied (%d channels: %v), then: %v", len(e.Applied), e.Applied, e.Err)
}

// Unwrap returns the cause, unless it claims that nothing was sent.
func (e *PartialError) Unwrap() error {
	if errors.Is(e.Err, ErrRateLimited) || errors.Is(e.Err, ErrNotConnected) {
		return nil
	}
	return e.Err
}
