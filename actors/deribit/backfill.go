package deribit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/venue"
	dvenue "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/internal/pidname"
)

// After a reconnect: backfill. Once re-authenticated on a new connection,
// the session holds the live notifications of the user.* channels
// (actors.Setup.Hold); the client's restore subscribes them again; then,
// once the venue has confirmed them (an actors.Setup.AfterRestore stage,
// before the client reports connected), the session fetches what changed
// while there was no connection and delivers it in the stream, in order,
// as Inbound messages with Backfill set:
//
//  1. for each wanted user.trades.* channel, the user's trades since the
//     last one the handler was given on it (private/get_user_trades_by_instrument
//     from the next trade_seq for user.trades.<instrument>.<interval>,
//     private/get_user_trades_by_currency from the last timestamp for
//     user.trades.<kind>.<currency>.<interval>), oldest first, a message a
//     page, each shaped as that channel's notification;
//  2. the open orders (private/get_open_orders), one notification of
//     OpenOrdersChannel whose data is the list;
//  3. a notification of BackfillChannel that ends the backfill (a
//     BackfillReport's fields: generation, trades, orders, complete, error);
//
// then releases the held live notifications, in order, less what the
// backfill delivered: trades by trade_id, orders by order_id and
// last_update_timestamp. A trade made at any moment of the reconnect is so
// delivered once: in the backfill if made before its fetch, live if after.
//
// Not on the client's first connection (nothing was missed) nor in a
// planned rotation (the old connection still delivers).

// Channels of the backfill's own notifications (Inbound.Channel).
const (
	// OpenOrdersChannel carries the open orders fetched after a reconnect:
	// data is private/get_open_orders' list, the whole of them.
	OpenOrdersChannel = "user.orders.any.any.raw"
	// BackfillChannel ends a backfill: data is a BackfillReport.
	BackfillChannel = "zenws.backfill"
)

// Bounds of a backfill against a venue that answers too much.
const (
	// DefaultBackfillPages is the default Config.BackfillPages: the
	// trade pages fetched per channel at most.
	DefaultBackfillPages = 10
	// DefaultBackfillPageSize is the default Config.BackfillPageSize
	// (Deribit allows 1000).
	DefaultBackfillPageSize = 100
	// maxBackfillAnswer bounds one answer of the venue, in bytes.
	maxBackfillAnswer = 4 << 20
	// maxOpenOrders bounds the open orders one answer may list.
	maxOpenOrders = 10000
	// maxTradeChannels bounds the user.trades channels followed.
	maxTradeChannels = 256
	// maxIDsAtLast bounds the trade ids remembered at the last timestamp.
	maxIDsAtLast = 64
	// drainWait bounds the wait for the handler to be given what came
	// before the reconnect, so the last trade it saw is known.
	drainWait = 2 * time.Second
)

// BackfillReason says why a backfill stopped short.
type BackfillReason int

// Backfill reasons.
const (
	// BackfillRefused: the venue answered a request with an error.
	BackfillRefused BackfillReason = iota + 1
	// BackfillMalformed: an answer was not the method's shape.
	BackfillMalformed
	// BackfillTooLarge: an answer was larger than the bounds allow (more
	// bytes, trades or orders than asked for).
	BackfillTooLarge
	// BackfillTooManyPages: has_more was still true after
	// Config.BackfillPages pages.
	BackfillTooManyPages
	// BackfillBackwards: trades went back (trade_seq or timestamp lower
	// than the one before).
	BackfillBackwards
	// BackfillHoldOverflow: more live notifications came during the
	// backfill than the hold keeps (actors.DefaultHoldMessages,
	// actors.DefaultHoldBytes): those past the bound were dropped.
	BackfillHoldOverflow
)

// String names the reason.
func (r BackfillReason) String() string {
	switch r {
	case BackfillRefused:
		return "refused"
	case BackfillMalformed:
		return "malformed"
	case BackfillTooLarge:
		return "too large"
	case BackfillTooManyPages:
		return "too many pages"
	case BackfillBackwards:
		return "backwards"
	case BackfillHoldOverflow:
		return "live notifications past the hold's bound"
	}
	return "BackfillReason(" + strconv.Itoa(int(r)) + ")"
}

// BackfillError is why a backfill stopped short: what was fetched before
// it was delivered, the rest was not, and the ending BackfillChannel
// notification says complete false. The connection goes on (its orders are
// protected by cancel-on-disconnect); the consumer decides how to
// reconcile the rest.
type BackfillError struct {
	Method  string
	Channel string // the user.trades channel; "" for the open orders
	Reason  BackfillReason
	Err     error // the venue's refusal, the decoding error; may be nil
}

// Error says what, where and why.
func (e *BackfillError) Error() string {
	s := "zenws/deribit: backfill " + e.Method
	if e.Channel != "" {
		s += " for " + e.Channel
	}
	s += ": " + e.Reason.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *BackfillError) Unwrap() error { return e.Err }

// BackfillReport is what a backfill did (the data of its BackfillChannel
// notification, and Session.LastBackfill).
type BackfillReport struct {
	Generation uint64 `json:"generation"`
	Trades     int    `json:"trades"`
	Orders     int    `json:"orders"`
	// Deduplicated counts the held live notifications left out (or cut)
	// because the backfill had delivered them.
	Deduplicated int    `json:"deduplicated"`
	Complete     bool   `json:"complete"`
	Error        string `json:"error,omitempty"`
	// Err is the *BackfillError when the backfill stopped short.
	Err error `json:"-"`
}

// tradeMark is the newest trade the handler was given on one channel.
type tradeMark struct {
	seq uint64   // trade_seq (per instrument)
	ts  int64    // timestamp, Unix ms
	ids []string // the trade ids at ts (bounded)
}

// marks follows the user.trades notifications the client delivers.
type marks struct {
	mu sync.Mutex
	by map[string]*tradeMark
}

// observingVenue is Deribit's venue with the session's venue.Observer of
// the user.trades channels.
type observingVenue struct {
	dvenue.Venue
	s *Session
}

// ObservePrefix implements venue.Observer.
func (*observingVenue) ObservePrefix() string { return "user.trades." }

// Observe implements venue.Observer: it keeps the newest trade of each
// user.trades channel the handler is given (backfills included). Cheap: the
// trades are read with the envelope peeker, only their ids, sequence
// numbers and timestamps.
func (v *observingVenue) Observe(channel string, data []byte) {
	v.s.marks.observe(channel, venue.Path(data, "params", "data"))
}

func (m *marks) observe(channel string, trades []byte) {
	var list []struct {
		ID  json.RawMessage `json:"trade_id"`
		Seq uint64          `json:"trade_seq"`
		TS  int64           `json:"timestamp"`
	}
	if len(trades) == 0 || len(trades) > maxBackfillAnswer || json.Unmarshal(trades, &list) != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mk := m.by[channel]
	if mk == nil {
		if m.by == nil {
			m.by = map[string]*tradeMark{}
		}
		if len(m.by) >= maxTradeChannels {
			return
		}
		mk = &tradeMark{}
		m.by[channel] = mk
	}
	for _, t := range list {
		id, _ := jsonrpc.String(t.ID)
		mk.advance(id, t.Seq, t.TS)
	}
}

// advance moves the mark to a trade newer than it (never back).
func (mk *tradeMark) advance(id string, seq uint64, ts int64) {
	if seq > mk.seq {
		mk.seq = seq
	}
	switch {
	case ts > mk.ts:
		mk.ts, mk.ids = ts, append(mk.ids[:0], id)
	case ts == mk.ts && len(mk.ids) < maxIDsAtLast:
		mk.ids = append(mk.ids, id)
	}
}

func (m *marks) get(channel string) (tradeMark, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mk := m.by[channel]
	if mk == nil {
		return tradeMark{}, false
	}
	return tradeMark{seq: mk.seq, ts: mk.ts, ids: append([]string(nil), mk.ids...)}, true
}

// LastBackfill is the report of the session's latest backfill (zero before
// the first).
func (s *Session) LastBackfill() BackfillReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastBackfill
}

// backfillOn reports whether the session backfills on setup's connection.
func (s *Session) backfillOn(setup *actors.Setup) bool {
	if s.cfg.ClientID == "" || s.cfg.DisableBackfill || !setup.Reconnected() || setup.Rotating() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.since.IsZero() // a connection of this session got through its hook before
}

// backfill fetches and delivers what changed while the client had no
// connection, then releases hold. A venue that answers badly stops it
// short (reported in the stream and LastBackfill; the connection goes on);
// an error is returned only when the connection itself failed (the attempt
// is retried; the hold ends with the connection, and the next backfill
// fetches what it held).
func (s *Session) backfill(ctx context.Context, setup *actors.Setup, hold *actors.Hold) error {
	log := s.log.With(pidname.Field("client", setup.Client().PID()), zap.Uint64("generation", setup.Generation()))
	dctx, cancel := context.WithTimeout(ctx, drainWait)
	if err := setup.Delivered(dctx); err != nil && ctx.Err() == nil {
		log.Info("the handler has not been given everything before the reconnect yet: the backfill may repeat a trade it is still to get", zap.Error(err))
	}
	cancel()
	rep := BackfillReport{Generation: setup.Generation(), Complete: true}
	given := &delivered{trades: map[tradeOn]bool{}, orders: map[string]orderState{}}
	var failed error
	for _, ch := range s.tradeChannels(setup) {
		n, err := s.backfillTrades(ctx, setup, ch, given)
		rep.Trades += n
		if err != nil {
			failed = err
			break
		}
	}
	if failed == nil {
		rep.Orders, failed = s.backfillOrders(ctx, setup, given)
	}
	if failed != nil {
		var be *BackfillError
		if !errors.As(failed, &be) || ended(setup) {
			return fmt.Errorf("zenws/deribit: backfill: %w", failed)
		}
		rep.Complete, rep.Error, rep.Err = false, be.Error(), be
	}
	// The end of the backfill goes in the stream when the release knows
	// whether the hold overflowed: before the live notifications it held.
	_, err := hold.Release(ctx, given.filter, func(r actors.Released) {
		rep.Deduplicated = given.cut
		if r.Overflow > 0 && rep.Complete {
			be := &BackfillError{Method: "hold", Reason: BackfillHoldOverflow, Err: fmt.Errorf("%d dropped after %d held", r.Overflow, r.Held)}
			rep.Complete, rep.Error, rep.Err = false, be.Error(), be
		}
		data, _ := json.Marshal(rep)
		setup.Backfill(BackfillChannel, notification(BackfillChannel, data))
	})
	if err != nil && !errors.Is(err, actors.ErrHoldOverflow) {
		return fmt.Errorf("zenws/deribit: backfill: %w", err)
	}
	// The report first, then the counts: who sees Backfills move reads it.
	s.mu.Lock()
	s.lastBackfill = rep
	s.mu.Unlock()
	if !rep.Complete {
		s.backfillErrors.Add(1)
		log.Warn("backfill stopped short: what was fetched is delivered, the rest is not", zap.Error(rep.Err))
	}
	s.backfills.Add(1)
	log.Debug("backfilled", zap.Int("trades", rep.Trades), zap.Int("orders", rep.Orders), zap.Int("deduplicated", rep.Deduplicated), zap.Bool("complete", rep.Complete))
	return nil
}

// orderState is the state of an order as the open orders list showed it.
type orderState struct {
	updated int64   // last_update_timestamp, Unix ms
	filled  float64 // filled_amount: Deribit's timestamps are in ms, two fills can share one
}

// tradeOn is a trade given on a channel.
type tradeOn struct{ channel, id string }

// delivered is what a backfill delivered, to leave out of the live
// notifications held meanwhile.
type delivered struct {
	trades map[tradeOn]bool      // per channel: a trade is backfilled on each channel apart
	orders map[string]orderState // by order_id, the open orders listed
	cut    int                   // held notifications dropped or cut (on the actor's goroutine)
}

// dupOrder reports whether a held user.orders update is no newer than the
// state of its order the open orders list delivered.
func (g *delivered) dupOrder(id string, updated int64, filled float64) bool {
	st, ok := g.orders[id]
	return ok && (updated < st.updated || updated == st.updated && filled <= st.filled)
}

// filter is the hold's filter: a user.trades notification loses the
// trades the backfill delivered on that channel (by trade_id), a user.orders one the
// updates no newer than the open orders list showed (by order_id and
// last_update_timestamp, then filled_amount); one left empty is dropped;
// others pass.
func (g *delivered) filter(channel string, data []byte) []byte {
	trades := strings.HasPrefix(channel, "user.trades.")
	if !trades && !strings.HasPrefix(channel, "user.orders.") {
		return data
	}
	raw := venue.Path(data, "params", "data")
	var items []json.RawMessage
	single := len(raw) > 0 && raw[0] == '{'
	if single {
		items = []json.RawMessage{raw}
	} else if json.Unmarshal(raw, &items) != nil {
		return data
	}
	keep := items[:0:0]
	for _, it := range items {
		var k struct {
			TradeID json.RawMessage `json:"trade_id"`
			OrderID json.RawMessage `json:"order_id"`
			Updated int64           `json:"last_update_timestamp"`
			Filled  float64         `json:"filled_amount"`
		}
		_ = json.Unmarshal(it, &k)
		var dup bool
		if trades {
			id, _ := jsonrpc.String(k.TradeID)
			dup = id != "" && g.trades[tradeOn{channel, id}]
		} else {
			id, _ := jsonrpc.String(k.OrderID)
			dup = id != "" && g.dupOrder(id, k.Updated, k.Filled)
		}
		if !dup {
			keep = append(keep, it)
		}
	}
	switch {
	case len(keep) == len(items):
		return data
	case len(keep) == 0:
		g.cut++
		return nil
	}
	g.cut++
	list, _ := json.Marshal(keep)
	return notification(channel, list)
}

// tradeChannels are the wanted user.trades channels, in order.
func (s *Session) tradeChannels(setup *actors.Setup) []string {
	var out []string
	for _, st := range setup.Client().Health().Channels {
		if st.Wanted && strings.HasPrefix(st.Channel, "user.trades.") && len(out) < maxTradeChannels {
			out = append(out, st.Channel)
		}
	}
	return out
}

// tradePage is one answer of the trade history methods.
type tradePage struct {
	Trades  []json.RawMessage `json:"trades"`
	HasMore *bool             `json:"has_more"`
}

type tradeKey struct {
	ID  json.RawMessage `json:"trade_id"`
	Seq *uint64         `json:"trade_seq"`
	TS  *int64          `json:"timestamp"`
}

// backfillTrades fetches the trades of one channel since its mark, page
// by page (oldest first, at most Config.BackfillPages pages), and delivers
// each page as that channel's notification. It returns how many it
// delivered.
func (s *Session) backfillTrades(ctx context.Context, setup *actors.Setup, channel string, given *delivered) (int, error) {
	parts := strings.Split(strings.TrimPrefix(channel, "user.trades."), ".")
	mk, known := s.marks.get(channel)
	params := map[string]any{"count": s.cfg.BackfillPageSize, "sorting": "asc"}
	var method string
	byInstrument := len(parts) == 2
	switch {
	case byInstrument:
		method = "private/get_user_trades_by_instrument"
		params["instrument_name"] = parts[0]
	case len(parts) == 3:
		method = "private/get_user_trades_by_currency"
		params["kind"], params["currency"] = parts[0], parts[1]
	default:
		return 0, nil // not a channel Deribit has
	}
	switch {
	case known && byInstrument:
		params["start_seq"] = mk.seq + 1
	case known:
		params["start_timestamp"] = mk.ts
	default:
		s.mu.Lock()
		params["start_timestamp"] = s.since.UnixMilli()
		s.mu.Unlock()
	}
	seen := map[string]bool{}
	for _, id := range mk.ids {
		seen[id] = true
	}
	bad := func(r BackfillReason, err error) error {
		return &BackfillError{Method: method, Channel: channel, Reason: r, Err: err}
	}
	delivered := 0
	lastSeq, lastTS := mk.seq, mk.ts
	for page := 1; ; page++ {
		res, err := fetch(ctx, setup, method, params, bad)
		if err != nil {
			return delivered, err
		}
		var p tradePage
		if err := json.Unmarshal(res, &p); err != nil || p.HasMore == nil || p.Trades == nil {
			return delivered, bad(BackfillMalformed, err)
		}
		if len(p.Trades) > s.cfg.BackfillPageSize {
			return delivered, bad(BackfillTooLarge, fmt.Errorf("%d trades for a count of %d", len(p.Trades), s.cfg.BackfillPageSize))
		}
		fresh := make([]json.RawMessage, 0, len(p.Trades))
		for _, raw := range p.Trades {
			var k tradeKey
			id, ok := "", false
			if json.Unmarshal(raw, &k) == nil && k.Seq != nil && k.TS != nil {
				id, ok = jsonrpc.String(k.ID)
			}
			if !ok || id == "" {
				return delivered, bad(BackfillMalformed, errors.New("a trade without trade_id, trade_seq and timestamp"))
			}
			if (byInstrument && known && *k.Seq <= lastSeq) || *k.TS < lastTS {
				return delivered, bad(BackfillBackwards, fmt.Errorf("trade %s (seq %d, timestamp %d) after seq %d, timestamp %d", id, *k.Seq, *k.TS, lastSeq, lastTS))
			}
			lastSeq, lastTS, known = *k.Seq, *k.TS, true
			given.trades[tradeOn{channel, id}] = true
			if seen[id] {
				continue // at the mark's timestamp, already given
			}
			seen[id] = true
			fresh = append(fresh, raw)
		}
		if len(fresh) > 0 {
			data, _ := json.Marshal(fresh)
			setup.Backfill(channel, notification(channel, data))
			delivered += len(fresh)
			s.backfilledTrades.Add(uint64(len(fresh)))
		}
		if !*p.HasMore || len(p.Trades) == 0 {
			return delivered, nil
		}
		if page >= s.cfg.BackfillPages {
			return delivered, bad(BackfillTooManyPages, fmt.Errorf("has_more after %d pages of %d", page, s.cfg.BackfillPageSize))
		}
		if byInstrument {
			params["start_seq"] = lastSeq + 1
		} else {
			params["start_timestamp"] = lastTS
		}
	}
}

// backfillOrders fetches the open orders and delivers them as one
// OpenOrdersChannel notification.
func (s *Session) backfillOrders(ctx context.Context, setup *actors.Setup, given *delivered) (int, error) {
	const method = "private/get_open_orders"
	bad := func(r BackfillReason, err error) error { return &BackfillError{Method: method, Reason: r, Err: err} }
	res, err := fetch(ctx, setup, method, map[string]any{}, bad)
	if err != nil {
		return 0, err
	}
	var orders []json.RawMessage
	if err := json.Unmarshal(res, &orders); err != nil || orders == nil {
		return 0, bad(BackfillMalformed, err)
	}
	if len(orders) > maxOpenOrders {
		return 0, bad(BackfillTooLarge, fmt.Errorf("%d open orders", len(orders)))
	}
	for _, o := range orders {
		var k struct {
			ID      json.RawMessage `json:"order_id"`
			Updated int64           `json:"last_update_timestamp"`
			Filled  float64         `json:"filled_amount"`
		}
		if json.Unmarshal(o, &k) == nil {
			if id, _ := jsonrpc.String(k.ID); id != "" {
				given.orders[id] = orderState{k.Updated, k.Filled}
			}
		}
	}
	setup.Backfill(OpenOrdersChannel, notification(OpenOrdersChannel, res))
	return len(orders), nil
}

// fetch calls method on setup's connection: a refusal and an answer over
// the byte bound are BackfillErrors (made by bad), a failed connection the
// call's own error.
func fetch(ctx context.Context, setup *actors.Setup, method string, params any, bad func(BackfillReason, error) error) (json.RawMessage, error) {
	res, err := setup.Call(ctx, method, params)
	var rpc *actors.RPCError
	switch {
	case errors.As(err, &rpc):
		return nil, bad(BackfillRefused, err)
	case err != nil:
		return nil, err
	case len(res) > maxBackfillAnswer:
		return nil, bad(BackfillTooLarge, fmt.Errorf("%d bytes", len(res)))
	}
	return res, nil
}

// notification is a Deribit subscription notification of channel with
// data (valid JSON).
func notification(channel string, data []byte) []byte {
	ch, _ := json.Marshal(channel)
	b := make([]byte, 0, len(data)+len(ch)+80)
	b = append(b, `{"jsonrpc":"2.0","method":"subscription","params":{"channel":`...)
	b = append(b, ch...)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, "}}"...)
}
