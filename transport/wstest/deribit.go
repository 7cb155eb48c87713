package wstest

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/coder/websocket"
)

// testRequestMsg is the Deribit heartbeat that asks the client to call
// "public/test".
var testRequestMsg = []byte(`{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}`)

// HeartbeatTimeoutReason is the close reason used when a connection is
// closed because a test_request heartbeat went unanswered (close code 1000).
const HeartbeatTimeoutReason = "heartbeat timeout"

// builtinResponders returns the responders implied by the configuration.
func builtinResponders(cfg config) map[string]Responder {
	m := make(map[string]Responder)
	if cfg.deribit || cfg.heartbeatInterval > 0 {
		m["public/test"] = deribitTest
	}
	if !cfg.deribit {
		return m
	}
	// Without credentials the subscription methods stay open to anyone,
	// as before authentication was modelled.
	private := func(fn Responder) Responder { return fn }
	if cfg.creds != nil {
		private = requireAuth
	}
	m["public/set_heartbeat"] = deribitSetHeartbeat
	m["public/disable_heartbeat"] = deribitDisableHeartbeat
	m["public/subscribe"] = deribitSubscribe
	m["private/subscribe"] = private(deribitSubscribe)
	m["public/unsubscribe"] = deribitUnsubscribe
	m["private/unsubscribe"] = private(deribitUnsubscribe)
	m["public/unsubscribe_all"] = deribitUnsubscribeAll
	m["private/unsubscribe_all"] = private(deribitUnsubscribeAll)
	m["public/auth"] = deribitAuth
	m["public/get_time"] = deribitGetTime
	m["private/get_account_summary"] = requireAuth(deribitAccountSummary)
	m["private/buy"] = requireAuth(deribitBuy)
	m["private/sell"] = requireAuth(deribitSell)
	m["private/enable_cancel_on_disconnect"] = requireAuth(deribitEnableCOD)
	m["private/disable_cancel_on_disconnect"] = requireAuth(deribitDisableCOD)
	m["private/get_cancel_on_disconnect"] = requireAuth(deribitGetCOD)
	m["private/get_open_orders"] = requireAuth(deribitGetOpenOrders)
	m["private/get_user_trades_by_currency"] = requireAuth(deribitTradesByCurrency)
	m["private/get_user_trades_by_instrument"] = requireAuth(deribitTradesByInstrument)
	return m
}

func invalidParams(msg string) *RPCError {
	return &RPCError{Code: CodeInvalidParams, Message: "Invalid params", Data: msg}
}

func deribitTest(*Conn, json.RawMessage) (any, *RPCError) {
	return map[string]string{"version": "wstest"}, nil
}

func deribitSetHeartbeat(c *Conn, params json.RawMessage) (any, *RPCError) {
	var p struct {
		Interval *float64 `json:"interval"`
	}
	if err := json.Unmarshal(params, &p); err != nil || p.Interval == nil {
		return nil, invalidParams(`expected {"interval": seconds}`)
	}
	secs := *p.Interval
	if secs <= 0 || math.IsInf(secs, 0) || math.IsNaN(secs) || secs > 1e6 {
		return nil, invalidParams("interval must be a positive number of seconds")
	}
	c.SetHeartbeat(time.Duration(secs * float64(time.Second)))
	return "ok", nil
}

func deribitDisableHeartbeat(c *Conn, _ json.RawMessage) (any, *RPCError) {
	c.SetHeartbeat(0)
	return "ok", nil
}

func channelsParam(params json.RawMessage) ([]string, *RPCError) {
	var p struct {
		Channels []string `json:"channels"`
	}
	if err := json.Unmarshal(params, &p); err != nil || len(p.Channels) == 0 {
		return nil, invalidParams(`expected {"channels": [...]}`)
	}
	return p.Channels, nil
}

func deribitSubscribe(c *Conn, params json.RawMessage) (any, *RPCError) {
	chans, rpcErr := channelsParam(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	return c.Subscribe(chans...), nil
}

func deribitUnsubscribe(c *Conn, params json.RawMessage) (any, *RPCError) {
	chans, rpcErr := channelsParam(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	return c.Unsubscribe(chans...), nil
}

func deribitUnsubscribeAll(c *Conn, _ json.RawMessage) (any, *RPCError) {
	c.Unsubscribe(c.Channels()...)
	return "ok", nil
}

func deribitGetTime(*Conn, json.RawMessage) (any, *RPCError) {
	return time.Now().UnixMilli(), nil
}

// Subscribe adds channels to the connection's subscription set, as
// "public/subscribe" does, and returns the channels (without duplicates, in
// order).
func (c *Conn) Subscribe(channels ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(channels))
	seen := make(map[string]struct{}, len(channels))
	for _, ch := range channels {
		if _, dup := seen[ch]; dup {
			continue
		}
		seen[ch] = struct{}{}
		c.channels[ch] = struct{}{}
		out = append(out, ch)
	}
	c.notifyLocked()
	return out
}

// Unsubscribe removes channels from the connection's subscription set, as
// "public/unsubscribe" does, and returns the channels that were removed.
func (c *Conn) Unsubscribe(channels ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(channels))
	for _, ch := range channels {
		if _, ok := c.channels[ch]; ok {
			delete(c.channels, ch)
			out = append(out, ch)
		}
	}
	c.notifyLocked()
	return out
}

// Publish sends a Deribit subscription notification
//
//	{"jsonrpc":"2.0","method":"subscription","params":{"channel":channel,"data":data}}
//
// to this connection, whether or not it is subscribed to channel.
func (c *Conn) Publish(ctx context.Context, channel string, data any) error {
	b, err := encodeNotification("subscription", subscriptionParams{Channel: channel, Data: data})
	if err != nil {
		return err
	}
	return c.write(ctx, websocket.MessageText, b)
}

type subscriptionParams struct {
	Channel string `json:"channel"`
	Data    any    `json:"data"`
}

// Publish sends a Deribit subscription notification for channel (see
// Conn.Publish) to every open, non-stalled connection subscribed to channel
// and returns to how many it was written successfully. It returns 0 if data
// cannot be marshalled.
func (s *Server) Publish(channel string, data any) int {
	b, err := encodeNotification("subscription", subscriptionParams{Channel: channel, Data: data})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range s.Conns() {
		if c.Stalled() || !c.Subscribed(channel) {
			continue
		}
		if c.write(context.Background(), websocket.MessageText, b) == nil {
			n++
		}
	}
	return n
}

// SetHeartbeat starts, changes or (with d <= 0) stops the Deribit
// test_request heartbeat on this connection, exactly as the
// "public/set_heartbeat" request does: every d the server sends a
// test_request, and if no "public/test" request has arrived by the time the
// next one is due it closes the connection with status 1000 and reason
// HeartbeatTimeoutReason. Changing the interval restarts the cycle.
func (c *Conn) SetHeartbeat(d time.Duration) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.hbInterval = d
	if !c.hbStarted && d > 0 {
		c.hbStarted = true
		c.wg.Add(1)
		go c.heartbeatLoop()
	}
	c.mu.Unlock()
	select {
	case c.hbKick <- struct{}{}:
	default:
	}
}

func (c *Conn) heartbeatLoop() {
	defer c.wg.Done()
	var (
		interval time.Duration
		timer    *time.Timer
		tick     <-chan time.Time
		awaiting bool  // a test_request is outstanding
		seen     int64 // testRequests when it was sent
	)
	stop := func() {
		if timer != nil {
			timer.Stop()
			timer, tick = nil, nil
		}
	}
	defer stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.hbKick:
			c.mu.Lock()
			interval = c.hbInterval
			c.mu.Unlock()
			stop()
			awaiting = false
			if interval > 0 {
				timer = time.NewTimer(interval)
				tick = timer.C
			}
		case <-tick:
			timer.Reset(interval)
			if c.stalled.Load() {
				// A stalled connection sends nothing and cannot hear the
				// answer; start afresh after Resume.
				awaiting = false
				continue
			}
			if awaiting && c.testRequests.Load() == seen {
				c.hbTimedOut.Store(true)
				c.s.noteHeartbeatTimeout()
				_ = c.Disconnect(websocket.StatusNormalClosure, HeartbeatTimeoutReason)
				return
			}
			seen = c.testRequests.Load()
			// Count before writing so that a client that has read the
			// test_request always sees it counted.
			c.heartbeatsSent.Add(1)
			if err := c.write(c.ctx, websocket.MessageText, testRequestMsg); err == nil {
				awaiting = true
			} else {
				c.heartbeatsSent.Add(-1)
				awaiting = false
			}
		}
	}
}
