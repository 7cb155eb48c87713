package nodews

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/transport/wstest"
)

// The OKX protocol subset against okx.js, spoken in raw frames through
// coder/websocket: the same rules as transport/wstest's WithOKX, so the
// two simulators check each other.

const (
	okxJSKey    = "k1"
	okxJSSecret = "s3cret"
	okxJSPass   = "p1"
)

// okxPeer is a raw client of okx.js.
type okxPeer struct {
	t      *testing.T
	c      *websocket.Conn
	connID string
}

var connIDRe = regexp.MustCompile(`"connId":"([0-9a-f]{8})"`)

func dialOKX(t *testing.T, url string) *okxPeer {
	t.Helper()
	c, _, err := websocket.Dial(ctx(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &okxPeer{t: t, c: c}
}

func (p *okxPeer) send(s string) {
	p.t.Helper()
	if err := p.c.Write(ctx(p.t), websocket.MessageText, []byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// next reads one frame; its connId (which must not change) becomes CONN.
func (p *okxPeer) next() (string, error) {
	p.t.Helper()
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := p.c.Read(rctx)
	if err != nil {
		return "", err
	}
	s := string(b)
	if m := connIDRe.FindStringSubmatch(s); m != nil {
		if p.connID == "" {
			p.connID = m[1]
		} else if p.connID != m[1] {
			p.t.Fatalf("connId changed from %s: %s", p.connID, s)
		}
		s = connIDRe.ReplaceAllString(s, `"connId":"CONN"`)
	}
	return s, nil
}

// want sends req and checks the next frames are exactly want.
func (p *okxPeer) want(req string, want ...string) {
	p.t.Helper()
	p.send(req)
	for _, w := range want {
		got, err := p.next()
		if err != nil {
			p.t.Fatalf("%s: read: %v", req, err)
		}
		if got != w {
			p.t.Fatalf("%s:\n got %s\nwant %s", req, got, w)
		}
	}
}

func okxLogin(id, key, secret, pass string, ts int64) string {
	s := strconv.FormatInt(ts, 10)
	return fmt.Sprintf(`{"id":%q,"op":"login","args":[{"apiKey":%q,"passphrase":%q,"timestamp":%q,"sign":%q}]}`,
		id, key, pass, s, wstest.OKXSign(secret, s))
}

func okxJS(t *testing.T, args ...string) string {
	t.Helper()
	return nodeVenue(t, "okx.js", append([]string{"apiKey=" + okxJSKey, "secretKey=" + okxJSSecret, "passphrase=" + okxJSPass}, args...)...)
}

func TestOKXPingAndLoginWithNodeWS(t *testing.T) {
	p := dialOKX(t, okxJS(t))
	p.want("ping", "pong")
	now := time.Now().Unix()
	p.want(okxLogin("a1", okxJSKey, "wrong", okxJSPass, now),
		`{"id":"a1","event":"error","code":"60009","msg":"Login failed.","connId":"CONN"}`)
	p.want(okxLogin("a2", "other", okxJSSecret, okxJSPass, now),
		`{"id":"a2","event":"error","code":"60009","msg":"Login failed.","connId":"CONN"}`)
	p.want(okxLogin("a3", okxJSKey, okxJSSecret, "other", now),
		`{"id":"a3","event":"error","code":"60009","msg":"Login failed.","connId":"CONN"}`)
	p.want(okxLogin("a4", okxJSKey, okxJSSecret, okxJSPass, now-31),
		`{"id":"a4","event":"error","code":"60006","msg":"Timestamp request expired","connId":"CONN"}`)
	p.want(okxLogin("a5", okxJSKey, okxJSSecret, okxJSPass, now),
		`{"id":"a5","event":"login","code":"0","msg":"","connId":"CONN"}`)
	p.want(strings.Replace(okxLogin("x", okxJSKey, okxJSSecret, okxJSPass, now), `"id":"x",`, "", 1),
		`{"event":"login","code":"0","msg":"","connId":"CONN"}`)
	p.want(`{"id":"st","op":"stats"}`,
		`{"id":"st","event":"stats","connections":1,"pings":1,"logins":2,"idleCloses":0,"rateLimited":0,"connId":"CONN"}`)
}

func TestOKXSubscribeWithNodeWS(t *testing.T) {
	url := okxJS(t)
	p := dialOKX(t, url)
	p.want(`{"id":"s1","op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},{"channel":"nope","instId":"BTC-USDT"},{"channel":"orders"},{"channel":"trades"}]}`,
		`{"id":"s1","event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"CONN"}`,
		`{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"seq":1}]}`,
		`{"id":"s1","event":"error","code":"60018","msg":"Wrong URL or channel:nope,instId:BTC-USDT doesn't exist.","connId":"CONN"}`,
		`{"id":"s1","event":"error","code":"60011","msg":"Please log in","connId":"CONN"}`,
		`{"id":"s1","event":"error","code":"60018","msg":"Wrong URL or channel:trades,instId: doesn't exist.","connId":"CONN"}`)
	// A second connection on the same channel: publish reaches both.
	q := dialOKX(t, url)
	q.want(`{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}`,
		`{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"CONN"}`,
		`{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"seq":2}]}`)
	q.want(`{"id":"p1","op":"publish","args":[{"channel":"tickers","instId":"BTC-USDT"}]}`,
		`{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"seq":3}]}`,
		`{"id":"p1","event":"publish","arg":{"channel":"tickers","instId":"BTC-USDT"},"count":2,"connId":"CONN"}`)
	if got, err := p.next(); err != nil || got != `{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"seq":3}]}` {
		t.Fatalf("push on the first connection: %s %v", got, err)
	}
	if p.connID == q.connID {
		t.Fatalf("both connections have connId %s", p.connID)
	}
	// Private channels after login.
	p.want(okxLogin("l", okxJSKey, okxJSSecret, okxJSPass, time.Now().Unix()),
		`{"id":"l","event":"login","code":"0","msg":"","connId":"CONN"}`)
	p.want(`{"id":"s2","op":"subscribe","args":[{"channel":"orders"}]}`,
		`{"id":"s2","event":"subscribe","arg":{"channel":"orders"},"connId":"CONN"}`,
		`{"arg":{"channel":"orders"},"data":[{"seq":1}]}`)
	p.want(`{"id":"u1","op":"unsubscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}`,
		`{"id":"u1","event":"unsubscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"CONN"}`)
	q.want(`{"id":"p2","op":"publish","args":[{"channel":"tickers","instId":"BTC-USDT"}]}`,
		`{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"seq":4}]}`,
		`{"id":"p2","event":"publish","arg":{"channel":"tickers","instId":"BTC-USDT"},"count":1,"connId":"CONN"}`)
}

func TestOKXInvalidRequestsWithNodeWS(t *testing.T) {
	p := dialOKX(t, okxJS(t))
	invalid := `{"event":"error","code":"60012","msg":"Invalid request","connId":"CONN"}`
	for _, req := range []string{
		"hello", `{"foo":1}`, `[1]`,
		`{"id":"has-dash","op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}`,
		`{"id":"` + strings.Repeat("a", 33) + `","op":"subscribe","args":[]}`,
		`{"id":7,"op":"subscribe","args":[]}`,
	} {
		p.want(req, invalid)
	}
	p.want(`{"id":"o1","op":"order","args":[]}`,
		`{"id":"o1","event":"error","code":"60012","msg":"Invalid request","connId":"CONN"}`)
	p.want("ping", "pong")
}

func TestOKXRequestLimitWithNodeWS(t *testing.T) {
	url := okxJS(t, "limit=3", "window=1000")
	p := dialOKX(t, url)
	sub := func(id string) string {
		return `{"id":"` + id + `","op":"unsubscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}`
	}
	ok := func(id string) string {
		return `{"id":"` + id + `","event":"unsubscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"CONN"}`
	}
	start := time.Now()
	p.want(sub("r1"), ok("r1"))
	p.want(sub("r2"), ok("r2"))
	p.want(okxLogin("r3", okxJSKey, okxJSSecret, okxJSPass, time.Now().Unix()), `{"id":"r3","event":"login","code":"0","msg":"","connId":"CONN"}`)
	for _, id := range []string{"r4", "r5"} {
		p.want(sub(id), `{"id":"`+id+`","event":"error","code":"60014","msg":"Requests too frequent.","connId":"CONN"}`)
	}
	p.want("ping", "pong")
	if time.Since(start) >= time.Second {
		t.Skip("too slow a machine to check the window")
	}
	// The limit is per connection.
	q := dialOKX(t, url)
	q.want(sub("q1"), ok("q1"))
	// The window slides: refused requests were not counted.
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	p.want(sub("r6"), ok("r6"))
}

func TestOKXIdleCloseWithNodeWS(t *testing.T) {
	p := dialOKX(t, okxJS(t, "idle=300"))
	for range 8 {
		time.Sleep(100 * time.Millisecond)
		p.want("ping", "pong")
	}
	start := time.Now()
	_, err := p.next()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4004 || ce.Reason != "no data in 30s" {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("closed after %v of silence", d)
	}
}
