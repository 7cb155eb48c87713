package wstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The order model of the Deribit simulation: private/buy and private/sell
// place orders that rest "open" until a test fills them (Server.FillOrder)
// or the connection they were placed on drops with cancel-on-disconnect
// armed (private/enable_cancel_on_disconnect), which cancels them with
// cancel_reason "cancel_on_disconnect", as the venue does. The server keeps
// every order and trade, to answer private/get_open_orders and
// private/get_user_trades_by_currency / _by_instrument.

// CancelOnDisconnectReason is the cancel_reason of an order that
// cancel-on-disconnect cancelled (Deribit's own value).
const CancelOnDisconnectReason = "cancel_on_disconnect"

// Bounds of the trade history methods (Deribit's): count defaults to 10
// and is at most 1000.
const (
	defaultTradeCount = 10
	maxTradeCount     = 1000
)

type orderParams struct {
	InstrumentName string   `json:"instrument_name"`
	Amount         *float64 `json:"amount"`
	Type           string   `json:"type"`
	Price          *float64 `json:"price"`
	Label          string   `json:"label"`
}

// simOrder is one order the server holds (guarded by s.d.mu).
type simOrder struct {
	id, state, direction, instrument, typ, label, cancelReason string
	amount, filled                                             float64
	price                                                      *float64
	created, updated                                           int64
	conn                                                       int // the connection it was placed on
}

func (o *simOrder) view() map[string]any {
	m := map[string]any{
		"order_id":              o.id,
		"order_state":           o.state,
		"direction":             o.direction,
		"instrument_name":       o.instrument,
		"amount":                o.amount,
		"filled_amount":         o.filled,
		"order_type":            o.typ,
		"label":                 o.label,
		"creation_timestamp":    o.created,
		"last_update_timestamp": o.updated,
	}
	if o.price != nil {
		m["price"] = *o.price
	}
	if o.cancelReason != "" {
		m["cancel_reason"] = o.cancelReason
	}
	return m
}

// DeribitTrade is one trade the simulator made (Server.FillOrder), in
// Deribit's shape.
type DeribitTrade struct {
	TradeID        string  `json:"trade_id"`
	TradeSeq       uint64  `json:"trade_seq"` // per instrument, from 1
	Timestamp      int64   `json:"timestamp"` // Unix milliseconds
	InstrumentName string  `json:"instrument_name"`
	OrderID        string  `json:"order_id"`
	Direction      string  `json:"direction"`
	Amount         float64 `json:"amount"`
	Price          float64 `json:"price"`
	State          string  `json:"state"` // the order's state after the trade
	Label          string  `json:"label,omitempty"`
}

// orderBook is the server-wide order state (in deribitState, under its mu).
type orderBook struct {
	orders    []*simOrder // in creation order
	byID      map[string]*simOrder
	trades    []DeribitTrade // in trade order (ids ascending)
	tradeSeq  map[string]uint64
	lastTS    int64          // the newest trade's timestamp: trades never go back in time
	cod       map[*Conn]bool // connections with cancel-on-disconnect armed
	codAcct   bool           // scope "account": every new connection starts armed
	codArms   int            // successful enable_cancel_on_disconnect calls
	codRefuse int            // the next n enable calls are refused (RefuseCancelOnDisconnect)
}

func deribitBuy(c *Conn, params json.RawMessage) (any, *RPCError) {
	return c.s.placeOrder(c, "buy", params)
}

func deribitSell(c *Conn, params json.RawMessage) (any, *RPCError) {
	return c.s.placeOrder(c, "sell", params)
}

// placeOrder executes private/buy or private/sell on c: the order rests
// "open" and is counted by Orders and OrdersByLabel.
func (s *Server) placeOrder(c *Conn, direction string, params json.RawMessage) (any, *RPCError) {
	var p orderParams
	if err := json.Unmarshal(params, &p); err != nil || p.InstrumentName == "" || p.Amount == nil || *p.Amount <= 0 {
		return nil, invalidParams(`expected {"instrument_name": string, "amount": number > 0}`)
	}
	orderType := p.Type
	if orderType == "" {
		orderType = "limit"
	}
	s.mu.Lock()
	s.orders++
	if s.ordersByLabel == nil {
		s.ordersByLabel = make(map[string]int)
	}
	s.ordersByLabel[p.Label]++
	id := "wstest-" + strconv.Itoa(s.orders)
	s.notifyLocked()
	s.mu.Unlock()

	now := time.Now().UnixMilli()
	o := &simOrder{id: id, state: "open", direction: direction, instrument: p.InstrumentName, typ: orderType,
		label: p.Label, amount: *p.Amount, price: p.Price, created: now, updated: now, conn: c.id}
	s.d.mu.Lock()
	b := s.d.book()
	b.orders = append(b.orders, o)
	b.byID[id] = o
	view := o.view()
	s.d.mu.Unlock()
	return map[string]any{"order": view, "trades": []any{}}, nil
}

// book returns the order state, made on first use; under d.mu.
func (d *deribitState) book() *orderBook {
	if d.orders == nil {
		d.orders = &orderBook{byID: map[string]*simOrder{}, tradeSeq: map[string]uint64{}, cod: map[*Conn]bool{}}
	}
	return d.orders
}

func codScope(params json.RawMessage) (string, *RPCError) {
	var p struct {
		Scope string `json:"scope"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return "", invalidParams(`expected {"scope": "connection" | "account"}`)
		}
	}
	switch p.Scope {
	case "", "connection":
		return "connection", nil
	case "account":
		return "account", nil
	}
	return "", invalidParams(`scope must be "connection" or "account"`)
}

func deribitEnableCOD(c *Conn, params json.RawMessage) (any, *RPCError) {
	return changeCOD(c, params, func(b *orderBook, scope string) *RPCError {
		if b.codRefuse > 0 {
			b.codRefuse--
			return &RPCError{Code: CodeInternalError, Message: "internal_server_error", Data: "cancel on disconnect refused (RefuseCancelOnDisconnect)"}
		}
		b.cod[c] = true
		b.codAcct = b.codAcct || scope == "account"
		b.codArms++
		return nil
	})
}

func deribitDisableCOD(c *Conn, params json.RawMessage) (any, *RPCError) {
	return changeCOD(c, params, func(b *orderBook, scope string) *RPCError {
		delete(b.cod, c)
		if scope == "account" {
			b.codAcct = false
		}
		return nil
	})
}

// changeCOD applies change to the order state under its lock, for the
// request's scope, and answers "ok" unless change refused.
func changeCOD(c *Conn, params json.RawMessage, change func(b *orderBook, scope string) *RPCError) (any, *RPCError) {
	scope, rpcErr := codScope(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	s := c.s
	s.d.mu.Lock()
	rpcErr = change(s.d.book(), scope)
	s.d.mu.Unlock()
	if rpcErr != nil {
		return nil, rpcErr
	}
	s.changedNow()
	return "ok", nil
}

func deribitGetCOD(c *Conn, params json.RawMessage) (any, *RPCError) {
	scope, rpcErr := codScope(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	s := c.s
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	b := s.d.book()
	on := b.cod[c]
	if scope == "account" {
		on = b.codAcct
	}
	return map[string]any{"scope": scope, "enabled": on}, nil
}

// connOpened arms cancel-on-disconnect on a new connection when it is on
// for the account.
func (s *Server) connOpened(c *Conn) {
	if !s.cfg.deribit {
		return
	}
	s.d.mu.Lock()
	if b := s.d.orders; b != nil && b.codAcct {
		b.cod[c] = true
	}
	s.d.mu.Unlock()
}

// connEnded runs when connection c has ended, however it ended (closed,
// reset, killed): with cancel-on-disconnect armed on it, the open orders
// placed on it are cancelled; without, they stay open.
func (s *Server) connEnded(c *Conn) {
	if !s.cfg.deribit {
		return
	}
	s.d.mu.Lock()
	b := s.d.orders
	if b == nil {
		s.d.mu.Unlock()
		return
	}
	armed := b.cod[c]
	delete(b.cod, c)
	n := 0
	if armed {
		now := time.Now().UnixMilli()
		for _, o := range b.orders {
			if o.conn == c.id && o.state == "open" {
				o.state, o.cancelReason, o.updated = "cancelled", CancelOnDisconnectReason, now
				n++
			}
		}
	}
	s.d.mu.Unlock()
	if n > 0 {
		s.changedNow()
	}
}

// changedNow wakes the server's waiters (WaitOrder, WaitCancelOnDisconnectArms).
func (s *Server) changedNow() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// CancelOnDisconnectArmed reports whether cancel-on-disconnect is armed on
// c (private/enable_cancel_on_disconnect, or the account scope).
func (c *Conn) CancelOnDisconnectArmed() bool {
	c.s.d.mu.Lock()
	defer c.s.d.mu.Unlock()
	return c.s.d.orders != nil && c.s.d.orders.cod[c]
}

// CancelOnDisconnectArms counts the successful
// private/enable_cancel_on_disconnect calls on all connections.
func (s *Server) CancelOnDisconnectArms() int {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if s.d.orders == nil {
		return 0
	}
	return s.d.orders.codArms
}

// RefuseCancelOnDisconnect makes the next n
// private/enable_cancel_on_disconnect calls fail with an internal error
// (and arm nothing), for tests of a client that must not trade unarmed.
func (s *Server) RefuseCancelOnDisconnect(n int) {
	s.d.mu.Lock()
	s.d.book().codRefuse = n
	s.d.mu.Unlock()
}

// Order returns the order with id as private/get_order_state would show
// it (order_state "open", "filled" or "cancelled"; cancel_reason), or
// false if there is none.
func (s *Server) Order(id string) (map[string]any, bool) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if s.d.orders == nil || s.d.orders.byID[id] == nil {
		return nil, false
	}
	return s.d.orders.byID[id].view(), true
}

// WaitOrderState waits until order id is in state (for example
// "cancelled" after its connection dropped).
func (s *Server) WaitOrderState(ctx context.Context, id, state string) error {
	err := s.waitFor(ctx, func() bool {
		o, ok := s.Order(id)
		return ok && o["order_state"] == state
	})
	if err != nil {
		return fmt.Errorf("wstest: waiting for order %s to be %s: %w", id, state, err)
	}
	return nil
}

// ErrNoOrder is returned by FillOrder for an order that does not exist or
// is no longer open.
var ErrNoOrder = errors.New("wstest: no such open order")

// FillOrder is a test hook: it makes a trade of amount (at most what is
// left; <= 0 fills the rest) on the open order id, at the order's price (0
// without one), and notifies the connections subscribed to a user.trades
// or user.orders channel that covers it, as Deribit would. Trades made while
// the order's client is disconnected are what a reconnect's backfill must
// find (private/get_user_trades_by_currency, _by_instrument).
func (s *Server) FillOrder(id string, amount float64) (DeribitTrade, error) {
	s.d.mu.Lock()
	b := s.d.book()
	o := b.byID[id]
	if o == nil || o.state != "open" {
		s.d.mu.Unlock()
		return DeribitTrade{}, fmt.Errorf("%w: %s", ErrNoOrder, id)
	}
	left := o.amount - o.filled
	if amount <= 0 || amount > left {
		amount = left
	}
	o.filled += amount
	if o.filled >= o.amount {
		o.state = "filled"
	}
	now := max(time.Now().UnixMilli(), b.lastTS)
	b.lastTS = now
	o.updated = now
	b.tradeSeq[o.instrument]++
	price := 0.0
	if o.price != nil {
		price = *o.price
	}
	t := DeribitTrade{TradeID: strconv.Itoa(1000 + len(b.trades) + 1), TradeSeq: b.tradeSeq[o.instrument], Timestamp: now,
		InstrumentName: o.instrument, OrderID: o.id, Direction: o.direction, Amount: amount, Price: price, State: o.state, Label: o.label}
	b.trades = append(b.trades, t)
	view := o.view()
	s.d.mu.Unlock()
	s.changedNow()
	for _, c := range s.Conns() {
		for _, ch := range c.Channels() {
			switch {
			case strings.HasPrefix(ch, "user.trades.") && covers(ch, "user.trades.", t.InstrumentName):
				_ = c.Publish(context.Background(), ch, []DeribitTrade{t})
			case strings.HasPrefix(ch, "user.orders.") && covers(ch, "user.orders.", t.InstrumentName):
				_ = c.Publish(context.Background(), ch, view)
			}
		}
	}
	return t, nil
}

// Trades returns every trade the server made, in order.
func (s *Server) Trades() []DeribitTrade {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if s.d.orders == nil {
		return nil
	}
	return append([]DeribitTrade(nil), s.d.orders.trades...)
}

// covers reports whether a user channel (after prefix:
// "<instrument>.<interval>" or "<kind>.<currency>.<interval>") covers
// instrument.
func covers(channel, prefix, instrument string) bool {
	parts := strings.Split(strings.TrimPrefix(channel, prefix), ".")
	switch len(parts) {
	case 2:
		return parts[0] == instrument
	case 3:
		return (parts[0] == "any" || parts[0] == instrumentKind(instrument)) &&
			(parts[1] == "any" || parts[1] == currencyOf(instrument))
	}
	return false
}

// currencyOf is an instrument's currency: what comes before the first '-'
// ("BTC-PERPETUAL": BTC; "ETH_USDC": ETH).
func currencyOf(instrument string) string {
	if i := strings.IndexAny(instrument, "-_"); i > 0 {
		return instrument[:i]
	}
	return instrument
}

// instrumentKind guesses Deribit's kind from an instrument's name:
// BTC-27MAY20-8750-C is an option, BTC-PERPETUAL and BTC-26JUN20 futures,
// ETH_USDC spot.
func instrumentKind(instrument string) string {
	switch n := strings.Count(instrument, "-"); {
	case n >= 3:
		return "option"
	case n >= 1:
		return "future"
	}
	return "spot"
}

func deribitGetOpenOrders(c *Conn, params json.RawMessage) (any, *RPCError) {
	var p struct {
		Kind string `json:"kind"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, invalidParams(`expected {"kind": string, "type": string}`)
		}
	}
	s := c.s
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	out := []map[string]any{}
	for _, o := range s.d.book().orders {
		if o.state == "open" && (p.Kind == "" || p.Kind == "any" || p.Kind == instrumentKind(o.instrument)) {
			out = append(out, o.view())
		}
	}
	return out, nil
}

// tradeQuery is the params of the user trade history methods.
type tradeQuery struct {
	Currency       string  `json:"currency"`
	Kind           string  `json:"kind"`
	InstrumentName string  `json:"instrument_name"`
	StartID        string  `json:"start_id"`
	EndID          string  `json:"end_id"`
	StartSeq       *uint64 `json:"start_seq"`
	EndSeq         *uint64 `json:"end_seq"`
	StartTimestamp *int64  `json:"start_timestamp"`
	EndTimestamp   *int64  `json:"end_timestamp"`
	Count          int     `json:"count"`
	Sorting        string  `json:"sorting"`
}

func deribitTradesByCurrency(c *Conn, params json.RawMessage) (any, *RPCError) {
	var q tradeQuery
	if err := json.Unmarshal(params, &q); err != nil || q.Currency == "" {
		return nil, invalidParams(`expected {"currency": string, ...}`)
	}
	return c.s.userTrades(q, func(t DeribitTrade) bool {
		return (q.Currency == "any" || currencyOf(t.InstrumentName) == q.Currency) &&
			(q.Kind == "" || q.Kind == "any" || q.Kind == instrumentKind(t.InstrumentName))
	})
}

func deribitTradesByInstrument(c *Conn, params json.RawMessage) (any, *RPCError) {
	var q tradeQuery
	if err := json.Unmarshal(params, &q); err != nil || q.InstrumentName == "" {
		return nil, invalidParams(`expected {"instrument_name": string, ...}`)
	}
	return c.s.userTrades(q, func(t DeribitTrade) bool { return t.InstrumentName == q.InstrumentName })
}

// userTrades answers a trade history query: the trades match keeps, within
// the id, sequence and time bounds (inclusive), sorted ("asc"; "desc" and
// "default" newest first), count of them (default 10, at most 1000), and
// has_more when more matched.
func (s *Server) userTrades(q tradeQuery, match func(DeribitTrade) bool) (any, *RPCError) {
	count := q.Count
	switch {
	case count == 0:
		count = defaultTradeCount
	case count < 0 || count > maxTradeCount:
		return nil, invalidParams("count must be in [1, 1000]")
	}
	startID, errS := tradeNumber(q.StartID)
	endID, errE := tradeNumber(q.EndID)
	if errS != nil || errE != nil {
		return nil, invalidParams("start_id and end_id are trade ids")
	}
	s.d.mu.Lock()
	var all []DeribitTrade
	for _, t := range s.d.book().trades {
		n, _ := tradeNumber(t.TradeID)
		switch {
		case !match(t),
			q.StartID != "" && n < startID, q.EndID != "" && n > endID,
			q.StartSeq != nil && t.TradeSeq < *q.StartSeq, q.EndSeq != nil && t.TradeSeq > *q.EndSeq,
			q.StartTimestamp != nil && t.Timestamp < *q.StartTimestamp, q.EndTimestamp != nil && t.Timestamp > *q.EndTimestamp:
			continue
		}
		all = append(all, t)
	}
	s.d.mu.Unlock()
	if q.Sorting != "asc" {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	more := len(all) > count
	if more {
		all = all[:count]
	}
	if all == nil {
		all = []DeribitTrade{}
	}
	return map[string]any{"trades": all, "has_more": more}, nil
}

func tradeNumber(id string) (uint64, error) {
	if id == "" {
		return 0, nil
	}
	return strconv.ParseUint(id, 10, 64)
}

func deribitAccountSummary(_ *Conn, params json.RawMessage) (any, *RPCError) {
	var p struct {
		Currency string `json:"currency"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, invalidParams(`expected {"currency": string}`)
		}
	}
	if p.Currency == "" {
		p.Currency = "BTC"
	}
	return map[string]any{
		"currency":        p.Currency,
		"balance":         10,
		"equity":          10,
		"available_funds": 10,
		"margin_balance":  10,
	}, nil
}

// Orders returns how many orders "private/buy" and "private/sell" have
// executed since the server started, so a test can prove that an order was
// not sent twice.
func (s *Server) Orders() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders
}

// OrdersByLabel returns how many executed orders carried label ("" counts
// the orders without one).
func (s *Server) OrdersByLabel(label string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ordersByLabel[label]
}
