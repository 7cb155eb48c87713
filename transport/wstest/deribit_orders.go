package wstest

import (
	"encoding/json"
	"strconv"
	"time"
)

type orderParams struct {
	InstrumentName string   `json:"instrument_name"`
	Amount         *float64 `json:"amount"`
	Type           string   `json:"type"`
	Price          *float64 `json:"price"`
	Label          string   `json:"label"`
}

func deribitBuy(c *Conn, params json.RawMessage) (any, *RPCError) {
	return c.s.placeOrder("buy", params)
}

func deribitSell(c *Conn, params json.RawMessage) (any, *RPCError) {
	return c.s.placeOrder("sell", params)
}

// placeOrder executes private/buy or private/sell: the order rests "open"
// and is counted by Orders and OrdersByLabel.
func (s *Server) placeOrder(direction string, params json.RawMessage) (any, *RPCError) {
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
	order := map[string]any{
		"order_id":              id,
		"order_state":           "open",
		"direction":             direction,
		"instrument_name":       p.InstrumentName,
		"amount":                *p.Amount,
		"filled_amount":         0,
		"order_type":            orderType,
		"label":                 p.Label,
		"creation_timestamp":    now,
		"last_update_timestamp": now,
	}
	if p.Price != nil {
		order["price"] = *p.Price
	}
	return map[string]any{"order": order, "trades": []any{}}, nil
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
