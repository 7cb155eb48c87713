// Package review15b holds adversarial tests of issue 15's parts 3 to 6:
// redundant feeds and sharding (package feed), cancel-on-disconnect and the
// dead man's switch, and the backfill after a reconnect. Every peer here is
// written by hand on coder/websocket. Tests that fail are findings
// (FINDINGS.md); they stay as guards once fixed.
package review15b

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// rq is one JSON-RPC request the peer received.
type rq struct {
	ID     json.RawMessage
	Method string
	Params json.RawMessage
}

func (r rq) channels() []string {
	var p struct {
		Channels []string `json:"channels"`
	}
	_ = json.Unmarshal(r.Params, &p)
	return p.Channels
}

// pconn is one connection of the peer.
type pconn struct {
	p   *peer
	ws  *websocket.Conn
	n   int64 // 1 for the first
	mu  sync.Mutex
	sub map[string]bool
	// armed: enable_cancel_on_disconnect answered ok on this connection.
	armed atomic.Bool
	gone  atomic.Bool // its reader ended
	wmu   sync.Mutex
}

func (c *pconn) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, []byte(s))
}

func (c *pconn) result(r rq, res string) {
	_ = c.write(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"result":` + res + `}`)
}

func (c *pconn) refuse(r rq, code int) {
	_ = c.write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":"refused"}}`, r.ID, code))
}

func (c *pconn) subscribed(ch string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sub[ch]
}

func (c *pconn) note(ch, data string) error {
	return c.write(fmt.Sprintf(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":%q,"data":%s}}`, ch, data))
}

// peer is a scriptable Deribit-like venue.
type peer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	conns  []*pconn
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}

	// onReq answers a request; false lets the default answer it. Set
	// before the first connection.
	onReq func(c *pconn, r rq) bool

	accepts atomic.Int64
	methods sync.Map // method -> *atomic.Int64
	refuse  atomic.Bool
}

func newPeer(t *testing.T) *peer {
	p := &peer{t: t, stop: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(p.handle))
	t.Cleanup(p.close)
	return p
}

func (p *peer) url() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") }

func (p *peer) count(method string) int64 {
	v, _ := p.methods.LoadOrStore(method, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (p *peer) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	cs := p.conns
	p.mu.Unlock()
	for _, c := range cs {
		_ = c.ws.CloseNow()
	}
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.wg.Wait()
}

func (p *peer) last() *pconn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) == 0 {
		return nil
	}
	return p.conns[len(p.conns)-1]
}

func (p *peer) all() []*pconn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pconn(nil), p.conns...)
}

func (p *peer) dropAll() {
	for _, c := range p.all() {
		_ = c.ws.CloseNow()
	}
}

func (p *peer) handle(w http.ResponseWriter, r *http.Request) {
	if p.refuse.Load() {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(64 << 20)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	c := &pconn{p: p, ws: ws, n: p.accepts.Add(1), sub: map[string]bool{}}
	p.conns = append(p.conns, c)
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	defer ws.CloseNow()
	defer c.gone.Store(true)
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		var r rq
		if json.Unmarshal(data, &r) != nil || r.ID == nil {
			continue
		}
		v, _ := p.methods.LoadOrStore(r.Method, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		if p.onReq != nil && p.onReq(c, r) {
			continue
		}
		p.def(c, r)
	}
}

// def answers as Deribit would, minimally.
func (p *peer) def(c *pconn, r rq) {
	switch r.Method {
	case "public/subscribe", "private/subscribe", "public/unsubscribe", "private/unsubscribe":
		chs := r.channels()
		c.mu.Lock()
		for _, ch := range chs {
			if strings.HasSuffix(r.Method, "/subscribe") {
				c.sub[ch] = true
			} else {
				delete(c.sub, ch)
			}
		}
		c.mu.Unlock()
		b, _ := json.Marshal(chs)
		c.result(r, string(b))
	case "public/auth":
		c.result(r, fmt.Sprintf(`{"access_token":"tok%d","refresh_token":"ref%d","expires_in":900,"token_type":"bearer","scope":"connection"}`, c.n, c.n))
	case "private/enable_cancel_on_disconnect":
		c.armed.Store(true)
		c.result(r, `"ok"`)
	case "private/get_open_orders":
		c.result(r, `[]`)
	case "private/get_user_trades_by_instrument", "private/get_user_trades_by_currency":
		c.result(r, `{"trades":[],"has_more":false}`)
	case "private/buy", "private/sell":
		c.result(r, `{"order":{"order_id":"o1","order_state":"open"},"trades":[]}`)
	default:
		c.result(r, `"ok"`)
	}
}

// inbox collects what a handler is given.
type inbox struct {
	mu  sync.Mutex
	all []actors.Inbound
}

func (b *inbox) handler(in actors.Inbound) {
	b.mu.Lock()
	b.all = append(b.all, in)
	b.mu.Unlock()
}

func (b *inbox) snapshot() []actors.Inbound {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]actors.Inbound(nil), b.all...)
}

func (b *inbox) count(f func(actors.Inbound) bool) int {
	n := 0
	for _, m := range b.snapshot() {
		if f(m) {
			n++
		}
	}
	return n
}

func baseOpts() []actors.Option {
	return []actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(200 * time.Millisecond),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryCount(actors.RetryForever),
		actors.WithRequestTimeout(2 * time.Second),
		actors.Option(func(c *actors.Config) { c.HostDialRate = 0; c.StableAfter = 100 * time.Millisecond }),
		actors.WithRateLimiter(ratelimit.Simple(100000, 100000), actors.RateWait),
	}
}

func ctx(t *testing.T) context.Context { return testutil.Context(t, 5*time.Second) }
