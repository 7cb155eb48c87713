// Package okx is OKX's (v5) venue for the zenws client, written against
// package venue alone: its text "ping"/"pong" heartbeat, its
// {"op":"subscribe","args":[...]} subscriptions confirmed by events, its
// login (an HMAC signature) on every connection before the client restores
// its subscriptions, its answers correlated by the request's "id", its
// push frames as notifications, and its per-connection limit of 480
// subscribe, unsubscribe and login requests an hour.
//
// Channels are named "<channel>:<instId>" ("tickers:BTC-USDT",
// "books5:ETH-USDT") or "<channel>" for a channel without an instrument
// ("account"); the client's Subscribe takes these names and
// Inbound.Channel carries them.
package okx

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
)

// OKX's public WebSocket endpoints. Tests never dial them; they are for
// users.
const (
	Public  = "wss://ws.okx.com:8443/ws/v5/public"
	Private = "wss://ws.okx.com:8443/ws/v5/private"
)

// Limits OKX publishes for one connection.
const (
	// RequestsPerHour is how many subscribe, unsubscribe and login
	// requests one connection may send in any hour.
	RequestsPerHour = 480
	// IdleLimit is how long OKX keeps a connection that sent nothing.
	IdleLimit = 30 * time.Second
	// PingEvery is how often the client sends "ping": well inside
	// IdleLimit.
	PingEvery = 20 * time.Second
)

// Config is an account's credentials. All empty: public channels only, no
// login.
type Config struct {
	APIKey     string
	SecretKey  string
	Passphrase string
	// Now is the clock the signature's timestamp comes from; nil:
	// time.Now.
	Now func() time.Time
}

// Venue is OKX. Make it with New and give it to the client with
// actors.WithVenue.
type Venue struct{ cfg Config }

// New returns the venue for cfg. Credentials are all or none.
func New(cfg Config) (*Venue, error) {
	n := 0
	for _, s := range []string{cfg.APIKey, cfg.SecretKey, cfg.Passphrase} {
		if s != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return nil, errors.New("zenws: okx: APIKey, SecretKey and Passphrase go together")
	}
	return &Venue{cfg: cfg}, nil
}

// Name returns "okx".
func (*Venue) Name() string { return "okx" }

// Dialect returns the OKX subscription dialect.
func (*Venue) Dialect() venue.Dialect { return Dialect{} }

// SecretFields implements venue.Redactor: the login's sign, passphrase and
// API key.
func (*Venue) SecretFields() []string { return []string{"sign", "passphrase", "apiKey"} }

// TextPing implements venue.TextPinger: "ping" every PingEvery, answered
// with "pong".
func (*Venue) TextPing() venue.TextPing {
	return venue.TextPing{Ping: []byte("ping"), Pong: []byte("pong"), Every: PingEvery}
}

// Secrets implements venue.Secreter: the secret key and the passphrase
// (the API key is an identifier, but hidden too).
func (v *Venue) Secrets() []string {
	if v.cfg.SecretKey == "" {
		return nil
	}
	return []string{v.cfg.APIKey, v.cfg.SecretKey, v.cfg.Passphrase}
}

// ConnectionLimit implements venue.ConnectionLimited: a fresh limiter for
// each connection (OKX counts per connection) that lets at most
// RequestsPerHour subscribe, unsubscribe and login requests out in any
// hour (a sliding window, as OKX counts them); everything else is free.
func (*Venue) ConnectionLimit() *ratelimit.Limiter {
	l, err := ratelimit.New("okx requests", func(f ratelimit.Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		switch op, _ := jsonrpc.String(jsonrpc.Field(f.Data, "op")); op {
		case "subscribe", "unsubscribe", "login":
			return 0, 1
		}
		return 0, 0
	}, ratelimit.Bucket{Name: "subscribe, unsubscribe, login", Burst: RequestsPerHour, Window: time.Hour})
	if err != nil {
		panic(err) // constant buckets: a programming error
	}
	return l
}

// OnConnect implements venue.Connector: with credentials, log in on the
// new connection before anything else. Wrong credentials are permanent
// (the client stops rather than retry).
func (v *Venue) OnConnect(ctx context.Context, s venue.Session) error {
	if v.cfg.SecretKey == "" {
		return nil
	}
	now := time.Now
	if v.cfg.Now != nil {
		now = v.cfg.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	sign := Sign(v.cfg.SecretKey, ts)
	s.AddSecrets(sign)
	msg, err := json.Marshal(map[string]any{
		"id": loginID,
		"op": "login",
		"args": []map[string]string{{
			"apiKey": v.cfg.APIKey, "passphrase": v.cfg.Passphrase, "timestamp": ts, "sign": sign,
		}},
	})
	if err != nil {
		return err
	}
	resp, err := s.Request(ctx, msg)
	if err != nil {
		if code, ok := errorCode(err); ok && permanentLogin[code] {
			return venue.Permanent(fmt.Errorf("okx login: %w", err))
		}
		return fmt.Errorf("okx login: %w", err)
	}
	if ev, _ := jsonrpc.String(jsonrpc.Field(resp, "event")); ev != "login" {
		return fmt.Errorf("okx login: answered with event %q, not login", ev)
	}
	return nil
}

// loginID is the id of every login. A client has at most one login in
// flight (a connection logs in before it is used, and a rotation's new
// connection while the old one is logged in already), and OKX may answer a
// refused login with an error event that carries no id: Correlate gives
// such an answer this id, so the login fails at once instead of at its
// timeout.
const loginID = "login"

// permanentLogin are the login refusals that retrying cannot cure: a bad
// API key (60005), a bad signature, i.e. a wrong secret key (60007), login
// not supported (60008), login failed (60009), a wrong passphrase
// (60024). An expired timestamp (60006, a clock off) is retried.
var permanentLogin = map[int]bool{60005: true, 60007: true, 60008: true, 60009: true, 60024: true}

// errorCode is the venue error code inside err, if any.
func errorCode(err error) (int, bool) {
	var ve *venue.Error
	if errors.As(err, &ve) {
		return ve.Code, true
	}
	return 0, false
}

// Sign is OKX's login signature: base64(HMAC-SHA256(secretKey, timestamp +
// "GET" + "/users/self/verify")).
func Sign(secretKey, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte(timestamp + "GET/users/self/verify"))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Correlate implements venue.Correlator: an event ("subscribe",
// "unsubscribe", "login", "error") or an operation's answer ({"op":..,
// "code":..}) that carries an "id" answers the request with that id; an
// error event without one answers the login in flight, if any.
func (*Venue) Correlate(data []byte) (venue.Response, bool) {
	id := jsonrpc.Field(data, "id")
	if id == nil {
		// An error without an id answers the login, if one is in flight
		// on that connection (see loginID); else nothing waits for it and
		// the client delivers it as any frame.
		if ev, _ := jsonrpc.String(jsonrpc.Field(data, "event")); ev == "error" {
			return venue.Response{ID: json.RawMessage(`"` + loginID + `"`), Err: refusal(data)}, true
		}
		return venue.Response{}, false
	}
	r := venue.Response{ID: json.RawMessage(id)}
	if ev, ok := jsonrpc.String(jsonrpc.Field(data, "event")); ok {
		switch code := codeOf(data); {
		case ev == "error", code != "" && code != "0":
			r.Err = refusal(data) // a login answered with a code other than "0" is refused too
		default:
			// The whole event: Dialect.Confirmed checks that it is the
			// event its request asked for.
			r.Result = json.RawMessage(data)
		}
		return r, true
	}
	if _, ok := jsonrpc.String(jsonrpc.Field(data, "op")); ok {
		if code := codeOf(data); code != "0" {
			r.Err = refusal(data)
		} else {
			r.Result = json.RawMessage(jsonrpc.Field(data, "data"))
		}
		return r, true
	}
	return venue.Response{}, false
}

// codeOf reads an answer's "code", a string ("60009") or a number.
func codeOf(data []byte) string {
	raw := jsonrpc.Field(data, "code")
	if s, ok := jsonrpc.String(raw); ok {
		return s
	}
	if len(raw) > 0 && len(raw) <= 20 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return string(raw)
	}
	return ""
}

// maxMessage bounds the text of a refusal kept from the venue: every
// failed channel keeps one.
const maxMessage = 1024

func refusal(data []byte) *venue.Error {
	code := codeOf(data)
	msg, _ := jsonrpc.String(jsonrpc.Field(data, "msg"))
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + fmt.Sprintf("... (%d bytes)", len(msg))
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		msg = strings.TrimSpace("code " + strconv.Quote(code) + " " + msg)
	}
	return &venue.Error{Code: n, Message: msg}
}

// Classify implements venue.Classifier: a push {"arg":{...},"data":[...]}
// is a notification of the channel named by its arg.
func (*Venue) Classify(data []byte) venue.Class {
	arg := jsonrpc.Field(data, "arg")
	if arg == nil || jsonrpc.Field(data, "data") == nil {
		return venue.Class{}
	}
	if ch, ok := nameOf(arg); ok {
		return venue.Class{Channel: ch}
	}
	return venue.Class{}
}

// arg is one subscription argument.
type arg struct {
	Channel string `json:"channel"`
	InstID  string `json:"instId,omitempty"`
}

func parseChannel(ch string) (arg, error) {
	name, inst, _ := strings.Cut(ch, ":")
	if name == "" {
		return arg{}, fmt.Errorf("zenws: okx: channel %q: want <channel>[:<instId>]", ch)
	}
	return arg{Channel: name, InstID: inst}, nil
}

func nameOf(raw []byte) (string, bool) {
	var a arg
	if err := json.Unmarshal(raw, &a); err != nil || a.Channel == "" {
		return "", false
	}
	if a.InstID == "" {
		return a.Channel, true
	}
	return a.Channel + ":" + a.InstID, true
}

// Dialect is OKX's subscriptions: {"id":"<id>","op":"subscribe","args":
// [{"channel":..,"instId":..}]}, one channel per request (OKX answers each
// argument with an event of its own, and the client matches one answer to
// one request; RateLimit keeps the requests within OKX's hourly limit).
type Dialect struct{}

// Requests implements venue.Dialect: one request per channel.
func (Dialect) Requests(op venue.SubscriptionOp, channels []string) []venue.SubscriptionRequest {
	out := make([]venue.SubscriptionRequest, 0, len(channels))
	for _, ch := range channels {
		out = append(out, venue.SubscriptionRequest{Op: op, Method: op.String(), Channels: []string{ch}})
	}
	return out
}

// Encode implements venue.Dialect.
func (Dialect) Encode(r venue.SubscriptionRequest, id uint64) ([]byte, error) {
	args := make([]arg, 0, len(r.Channels))
	for _, ch := range r.Channels {
		a, err := parseChannel(ch)
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	return json.Marshal(struct {
		ID   string `json:"id"`
		Op   string `json:"op"`
		Args []arg  `json:"args"`
	}{strconv.FormatUint(id, 10), r.Op.String(), args})
}

// Confirmed implements venue.Dialect: the answer must be the event r asked
// for ("subscribe" for a subscribe), and its arg names the channel.
func (Dialect) Confirmed(r venue.SubscriptionRequest, result json.RawMessage) ([]string, error) {
	if ev, _ := jsonrpc.String(jsonrpc.Field(result, "event")); ev != r.Op.String() {
		return nil, fmt.Errorf("zenws: okx: %s answered with event %q", r.Method, ev)
	}
	ch, ok := nameOf(jsonrpc.Field(result, "arg"))
	if !ok {
		return nil, fmt.Errorf("zenws: okx: %s answer without a channel: %s", r.Method, result)
	}
	return []string{ch}, nil
}
