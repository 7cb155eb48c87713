package wstest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// DefaultOKXIdle is how long an OKX-mode connection may stay silent before
// the server closes it, unless WithOKXIdle says otherwise: the venue's 30 s.
const DefaultOKXIdle = 30 * time.Second

// DefaultOKXRequestLimit and DefaultOKXRequestWindow are the venue's limit
// on login, subscribe and unsubscribe requests per connection: 480 in any
// sliding hour.
const (
	DefaultOKXRequestLimit  = 480
	DefaultOKXRequestWindow = time.Hour
)

// OKXIdleCloseCode and OKXIdleReason are the close code and reason of a
// connection closed for silence in OKX mode (see WithOKXIdle). The reason
// is the venue's, whatever the configured limit.
const (
	OKXIdleCloseCode websocket.StatusCode = 4004
	OKXIdleReason                         = "no data in 30s"
)

// OKX error codes sent in {"event":"error","code":...} events.
const (
	OKXCodeTimestampExpired = "60006" // login timestamp more than 30 s away
	OKXCodeLoginFailed      = "60009" // wrong apiKey, passphrase or sign
	OKXCodeNotLoggedIn      = "60011" // private channel before login
	OKXCodeInvalidRequest   = "60012" // anything the simulator does not understand
	OKXCodeTooFrequent      = "60014" // past the request limit
	OKXCodeNoSuchChannel    = "60018" // unknown channel or missing instId
)

// okxLoginWindow is how far a login timestamp may be from the server clock.
const okxLoginWindow = 30 * time.Second

var (
	okxPublic  = map[string]bool{"tickers": true, "books": true, "books5": true, "trades": true, "bbo-tbt": true, "candle1m": true}
	okxPrivate = map[string]bool{"orders": true, "account": true, "positions": true}
)

// OKXArg is an OKX subscription argument: a channel and, for public
// channels, an instrument ("" when absent, allowed for private channels).
type OKXArg struct {
	Channel string `json:"channel"`
	InstID  string `json:"instId,omitempty"`
}

type okxCreds struct{ apiKey, secretKey, passphrase string }

// WithOKX switches on a simulator of a subset of the OKX v5 WebSocket API
// (it replaces echoing and JSON-RPC handling on every connection):
//
//   - the text "ping" is answered with the text "pong" (counted by
//     Conn.OKXPings and Server.OKXPings);
//   - a connection that has sent no data message for the idle limit
//     (WithOKXIdle, default DefaultOKXIdle) is closed with
//     OKXIdleCloseCode (4004) and OKXIdleReason; a stalled connection is
//     not timed out;
//   - {"id","op":"login","args":[{"apiKey","passphrase","timestamp","sign"}]}:
//     the timestamp (Unix seconds) must be within 30 s of the server clock,
//     else error 60006 "Timestamp request expired"; with
//     WithOKXCredentials the key, passphrase and sign (see OKXSign) must
//     match, else error 60009 "Login failed."; without it any login
//     succeeds. Success is {"id","event":"login","code":"0","msg":"",
//     "connId"} and is counted by Conn.OKXLogins and Server.OKXLogins;
//   - {"id","op":"subscribe"|"unsubscribe","args":[{"channel","instId"},...]}:
//     one event per arg, in order: {"id","event":"subscribe","arg",
//     "connId"} (or "unsubscribe"), or error 60018 for an unknown channel
//     or a public one without instId (public: tickers, books, books5,
//     trades, bbo-tbt, candle1m), or error 60011 "Please log in" for a
//     private channel (orders, account, positions) before a successful
//     login on the connection;
//   - login, subscribe and unsubscribe requests are limited per connection
//     (WithOKXRequestLimit, default 480 a sliding hour); past the limit the
//     request gets error 60014 "Requests too frequent." and is not
//     counted; the connection stays open;
//   - anything else (other ops, JSON without "op", non-JSON text, binary
//     messages, an "id" that is not 1 to 32 letters and digits) gets error
//     60012 "Invalid request".
//
// Error events are {"id","event":"error","code","msg","connId"}; "id" is
// present when the request carried a valid one. connId is a random 8-digit
// hex string per connection (Conn.OKXConnID). Data is pushed with
// Server.PublishOKX or Conn.PublishOKX. WithOKX takes precedence over
// WithDeribit and WithEcho.
func WithOKX() Option {
	return func(c *config) { c.okx = true }
}

// WithOKXCredentials makes OKX logins check apiKey, passphrase and the
// sign computed with secretKey (see OKXSign). It implies WithOKX. The
// secret is kept in memory only.
func WithOKXCredentials(apiKey, secretKey, passphrase string) Option {
	return func(c *config) {
		c.okx = true
		c.okxCreds = &okxCreds{apiKey: apiKey, secretKey: secretKey, passphrase: passphrase}
	}
}

// WithOKXIdle sets how long an OKX-mode connection may send nothing before
// the server closes it with 4004 (default DefaultOKXIdle). It implies
// WithOKX. d <= 0 means the default.
func WithOKXIdle(d time.Duration) Option {
	return func(c *config) {
		c.okx = true
		if d <= 0 {
			d = DefaultOKXIdle
		}
		c.okxIdle = d
	}
}

// WithOKXRequestLimit allows at most n login, subscribe and unsubscribe
// requests per connection in any sliding window per (default
// DefaultOKXRequestLimit in DefaultOKXRequestWindow). It implies WithOKX.
// n <= 0 or per <= 0 means the default.
func WithOKXRequestLimit(n int, per time.Duration) Option {
	return func(c *config) {
		c.okx = true
		if n <= 0 || per <= 0 {
			n, per = DefaultOKXRequestLimit, DefaultOKXRequestWindow
		}
		c.okxReqLimit, c.okxReqWindow = n, per
	}
}

// OKXSign returns the login sign OKX expects:
// base64(HMAC-SHA256(secretKey, timestamp + "GET" + "/users/self/verify")).
func OKXSign(secretKey, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte(timestamp + "GET" + "/users/self/verify"))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// okxConn is the OKX state of one connection.
type okxConn struct {
	connID   string
	lastRecv time.Time // last data message; guarded by mu
	idled    bool

	mu       sync.Mutex
	subs     map[OKXArg]struct{}
	loggedIn bool
	logins   int
	pings    int
	reqTimes []time.Time // admitted rate-limited requests, oldest first, at most the limit
}

func newOKXConn() *okxConn {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &okxConn{connID: hex.EncodeToString(b[:]), subs: make(map[OKXArg]struct{}), lastRecv: time.Now()}
}

// okxEvent is every event the simulator sends, fields in the venue's order.
type okxEvent struct {
	ID     string  `json:"id,omitempty"`
	Event  string  `json:"event"`
	Arg    *OKXArg `json:"arg,omitempty"`
	Code   string  `json:"code,omitempty"`
	Msg    *string `json:"msg,omitempty"`
	ConnID string  `json:"connId"`
}

type okxPush struct {
	Arg  OKXArg `json:"arg"`
	Data []any  `json:"data"`
}

func (c *Conn) okxSend(ev okxEvent) {
	ev.ConnID = c.okx.connID
	b, _ := json.Marshal(ev)
	_ = c.write(c.ctx, websocket.MessageText, b)
}

func (c *Conn) okxError(id, code, msg string) {
	c.okxSend(okxEvent{ID: id, Event: "error", Code: code, Msg: &msg})
}

// okxTouch notes that a data message arrived.
func (c *Conn) okxTouch() {
	c.okx.mu.Lock()
	c.okx.lastRecv = time.Now()
	c.okx.mu.Unlock()
}

// okxIdleLoop closes the connection once it has been silent for the idle
// limit.
func (c *Conn) okxIdleLoop(idle time.Duration) {
	defer c.wg.Done()
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.okx.mu.Lock()
		if c.stalled.Load() {
			c.okx.lastRecv = time.Now() // start afresh after Resume
		}
		left := idle - time.Since(c.okx.lastRecv)
		if left <= 0 {
			c.okx.idled = true
		}
		c.okx.mu.Unlock()
		if left <= 0 {
			c.s.noteOKXIdle()
			_ = c.Disconnect(OKXIdleCloseCode, OKXIdleReason)
			return
		}
		t.Reset(left)
	}
}

// okxRequest is a request as the simulator reads it.
type okxRequest struct {
	ID   json.RawMessage   `json:"id"`
	Op   *string           `json:"op"`
	Args []json.RawMessage `json:"args"`
}

func validOKXID(id string) bool {
	if len(id) < 1 || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// okxDispatch answers one message in OKX mode.
func (c *Conn) okxDispatch(typ websocket.MessageType, data []byte) {
	if typ == websocket.MessageText && string(data) == "ping" {
		c.okx.mu.Lock()
		c.okx.pings++
		c.okx.mu.Unlock()
		c.s.noteOKXPing()
		_ = c.write(c.ctx, websocket.MessageText, []byte("pong"))
		return
	}
	var req okxRequest
	if typ != websocket.MessageText || json.Unmarshal(data, &req) != nil || req.Op == nil {
		c.okxError("", OKXCodeInvalidRequest, "Invalid request")
		return
	}
	id := ""
	if len(req.ID) > 0 && string(req.ID) != "null" {
		if json.Unmarshal(req.ID, &id) != nil || !validOKXID(id) {
			c.okxError("", OKXCodeInvalidRequest, "Invalid request")
			return
		}
	}
	switch op := *req.Op; op {
	case "login", "subscribe", "unsubscribe":
		if !c.okxAdmit() {
			c.s.noteOKXRateLimited()
			c.okxError(id, OKXCodeTooFrequent, "Requests too frequent.")
			return
		}
		if op == "login" {
			c.okxLogin(id, req.Args)
		} else {
			c.okxSubscribe(id, op, req.Args)
		}
	default:
		c.okxError(id, OKXCodeInvalidRequest, "Invalid request")
	}
}

// okxAdmit counts one rate-limited request in the sliding window, or
// reports that the window is full.
func (c *Conn) okxAdmit() bool {
	limit, window := c.s.cfg.okxReqLimit, c.s.cfg.okxReqWindow
	now := time.Now()
	c.okx.mu.Lock()
	defer c.okx.mu.Unlock()
	i := 0
	for i < len(c.okx.reqTimes) && now.Sub(c.okx.reqTimes[i]) >= window {
		i++
	}
	c.okx.reqTimes = c.okx.reqTimes[i:]
	if len(c.okx.reqTimes) >= limit {
		return false
	}
	c.okx.reqTimes = append(c.okx.reqTimes, now)
	return true
}

func (c *Conn) okxLogin(id string, args []json.RawMessage) {
	var p struct {
		APIKey     *string `json:"apiKey"`
		Passphrase *string `json:"passphrase"`
		Timestamp  *string `json:"timestamp"`
		Sign       *string `json:"sign"`
	}
	if len(args) != 1 || json.Unmarshal(args[0], &p) != nil ||
		p.APIKey == nil || p.Passphrase == nil || p.Timestamp == nil || p.Sign == nil {
		c.okxError(id, OKXCodeInvalidRequest, "Invalid request")
		return
	}
	secs, err := strconv.ParseFloat(*p.Timestamp, 64)
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
		c.okxError(id, OKXCodeInvalidRequest, "Invalid request")
		return
	}
	if math.Abs(secs-float64(time.Now().UnixNano())/1e9) > okxLoginWindow.Seconds() {
		c.okxError(id, OKXCodeTimestampExpired, "Timestamp request expired")
		return
	}
	if cr := c.s.cfg.okxCreds; cr != nil {
		want := OKXSign(cr.secretKey, *p.Timestamp)
		ok := hmac.Equal([]byte(*p.APIKey), []byte(cr.apiKey)) &&
			hmac.Equal([]byte(*p.Passphrase), []byte(cr.passphrase)) &&
			hmac.Equal([]byte(*p.Sign), []byte(want))
		if !ok {
			c.okxError(id, OKXCodeLoginFailed, "Login failed.")
			return
		}
	}
	c.okx.mu.Lock()
	c.okx.loggedIn = true
	c.okx.logins++
	c.okx.mu.Unlock()
	c.s.noteOKXLogin()
	c.mu.Lock()
	c.notifyLocked()
	c.mu.Unlock()
	empty := ""
	c.okxSend(okxEvent{ID: id, Event: "login", Code: "0", Msg: &empty})
}

func (c *Conn) okxSubscribe(id, op string, args []json.RawMessage) {
	if len(args) == 0 {
		c.okxError(id, OKXCodeInvalidRequest, "Invalid request")
		return
	}
	for _, raw := range args {
		var a OKXArg
		if json.Unmarshal(raw, &a) != nil {
			c.okxError(id, OKXCodeInvalidRequest, "Invalid request")
			continue
		}
		switch {
		case okxPrivate[a.Channel]:
			if !c.OKXLoggedIn() {
				c.okxError(id, OKXCodeNotLoggedIn, "Please log in")
				continue
			}
		case okxPublic[a.Channel] && a.InstID != "":
		default:
			c.okxError(id, OKXCodeNoSuchChannel, "Wrong URL or channel:"+a.Channel+",instId:"+a.InstID+" doesn't exist.")
			continue
		}
		c.okx.mu.Lock()
		if op == "subscribe" {
			c.okx.subs[a] = struct{}{}
		} else {
			delete(c.okx.subs, a)
		}
		c.okx.mu.Unlock()
		c.mu.Lock()
		c.notifyLocked()
		c.mu.Unlock()
		c.okxSend(okxEvent{ID: id, Event: op, Arg: &a})
	}
}

// OKXConnID returns the connection's OKX connId ("" outside OKX mode).
func (c *Conn) OKXConnID() string {
	if c.okx == nil {
		return ""
	}
	return c.okx.connID
}

// OKXLoggedIn reports whether an OKX login has succeeded on this
// connection.
func (c *Conn) OKXLoggedIn() bool {
	if c.okx == nil {
		return false
	}
	c.okx.mu.Lock()
	defer c.okx.mu.Unlock()
	return c.okx.loggedIn
}

// OKXLogins returns how many OKX logins have succeeded on this connection.
func (c *Conn) OKXLogins() int {
	if c.okx == nil {
		return 0
	}
	c.okx.mu.Lock()
	defer c.okx.mu.Unlock()
	return c.okx.logins
}

// OKXPings returns how many text "ping" messages this connection has had
// answered with "pong".
func (c *Conn) OKXPings() int {
	if c.okx == nil {
		return 0
	}
	c.okx.mu.Lock()
	defer c.okx.mu.Unlock()
	return c.okx.pings
}

// OKXIdleClosed reports whether the server closed this connection because
// it sent nothing for the idle limit (see WithOKXIdle).
func (c *Conn) OKXIdleClosed() bool {
	if c.okx == nil {
		return false
	}
	c.okx.mu.Lock()
	defer c.okx.mu.Unlock()
	return c.okx.idled
}

// OKXChannels returns the connection's current OKX subscriptions, sorted
// by channel, then instId.
func (c *Conn) OKXChannels() []OKXArg {
	if c.okx == nil {
		return nil
	}
	c.okx.mu.Lock()
	out := make([]OKXArg, 0, len(c.okx.subs))
	for a := range c.okx.subs {
		out = append(out, a)
	}
	c.okx.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Channel != out[j].Channel {
			return out[i].Channel < out[j].Channel
		}
		return out[i].InstID < out[j].InstID
	})
	return out
}

// OKXSubscribed reports whether the connection is subscribed to (channel,
// instID); instID is "" for a private subscription without one.
func (c *Conn) OKXSubscribed(channel, instID string) bool {
	if c.okx == nil {
		return false
	}
	c.okx.mu.Lock()
	defer c.okx.mu.Unlock()
	_, ok := c.okx.subs[OKXArg{Channel: channel, InstID: instID}]
	return ok
}

// WaitOKXSubscribed waits until the connection is subscribed to every one
// of args.
func (c *Conn) WaitOKXSubscribed(ctx context.Context, args ...OKXArg) error {
	err := c.waitFor(ctx, func() bool {
		for _, a := range args {
			if !c.OKXSubscribed(a.Channel, a.InstID) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("wstest: conn %d: waiting for OKX subscriptions %v: %w", c.id, args, err)
	}
	return nil
}

// PublishOKX sends one OKX data push {"arg":{"channel","instId"},"data":
// [data...]} to this connection, whether or not it is subscribed.
func (c *Conn) PublishOKX(ctx context.Context, channel, instID string, data ...any) error {
	b, err := encodeOKXPush(channel, instID, data)
	if err != nil {
		return err
	}
	return c.write(ctx, websocket.MessageText, b)
}

func encodeOKXPush(channel, instID string, data []any) ([]byte, error) {
	if data == nil {
		data = []any{}
	}
	return json.Marshal(okxPush{Arg: OKXArg{Channel: channel, InstID: instID}, Data: data})
}

// PublishOKX sends one OKX data push (see Conn.PublishOKX) to every open,
// non-stalled connection subscribed to exactly (channel, instID), and
// returns to how many it was written. It returns 0 if data cannot be
// marshalled.
func (s *Server) PublishOKX(channel, instID string, data ...any) int {
	b, err := encodeOKXPush(channel, instID, data)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range s.Conns() {
		if c.Stalled() || !c.OKXSubscribed(channel, instID) {
			continue
		}
		if c.write(context.Background(), websocket.MessageText, b) == nil {
			n++
		}
	}
	return n
}

// okxCounters are the server-wide OKX counters, guarded by Server.mu.
type okxCounters struct {
	pings, logins, idleCloses, rateLimited int
}

func (s *Server) noteOKXPing()        { s.mu.Lock(); s.okxStats.pings++; s.mu.Unlock() }
func (s *Server) noteOKXLogin()       { s.mu.Lock(); s.okxStats.logins++; s.mu.Unlock() }
func (s *Server) noteOKXRateLimited() { s.mu.Lock(); s.okxStats.rateLimited++; s.mu.Unlock() }
func (s *Server) noteOKXIdle() {
	s.mu.Lock()
	s.okxStats.idleCloses++
	s.notifyLocked()
	s.mu.Unlock()
}

// OKXPings returns how many text "ping" messages the server has answered
// in OKX mode, over all connections.
func (s *Server) OKXPings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.okxStats.pings
}

// OKXLogins returns how many OKX logins have succeeded, over all
// connections.
func (s *Server) OKXLogins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.okxStats.logins
}

// OKXIdleCloses returns how many connections were closed for silence (see
// WithOKXIdle).
func (s *Server) OKXIdleCloses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.okxStats.idleCloses
}

// OKXRateLimited returns how many requests got error 60014 (see
// WithOKXRequestLimit), over all connections.
func (s *Server) OKXRateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.okxStats.rateLimited
}
