package review13b

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// req is what the hostile peer parses of a client frame.
type req struct {
	ID   json.RawMessage   `json:"id"`
	Op   string            `json:"op"`
	Args []json.RawMessage `json:"args"`
}

type pconn struct {
	c   *websocket.Conn
	ctx context.Context
	mu  sync.Mutex
}

func (p *pconn) write(s string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return p.c.Write(ctx, websocket.MessageText, []byte(s))
}

// peer is a hostile OKX-like server on 127.0.0.1.
type peer struct {
	srv *httptest.Server
	URL string
	// handle is called for every text frame; returning false falls back to
	// the default OKX behaviour.
	handle func(p *pconn, raw []byte, r req) bool
	// onOpen runs in its own goroutine per connection.
	onOpen func(p *pconn)

	conns, logins, subs, pings atomic.Int64
	mu                         sync.Mutex
	perConn                    []int
	frames                     []string
	closeAll                   chan struct{}
	wg                         sync.WaitGroup
}

func newPeer(t *testing.T, handle func(p *pconn, raw []byte, r req) bool) *peer {
	pe := &peer{handle: handle, closeAll: make(chan struct{})}
	pe.srv = httptest.NewServer(http.HandlerFunc(pe.serve))
	pe.URL = "ws" + strings.TrimPrefix(pe.srv.URL, "http")
	t.Cleanup(func() {
		close(pe.closeAll)
		pe.srv.CloseClientConnections()
		pe.srv.Close()
		pe.wg.Wait()
	})
	return pe
}

func (pe *peer) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 20)
	idx := int(pe.conns.Add(1)) - 1
	pe.mu.Lock()
	pe.perConn = append(pe.perConn, 0)
	pe.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-pe.closeAll:
			cancel()
		case <-ctx.Done():
		}
	}()
	p := &pconn{c: c, ctx: ctx}
	if pe.onOpen != nil {
		pe.wg.Add(1)
		go func() { defer pe.wg.Done(); pe.onOpen(p) }()
	}
	defer c.CloseNow()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		s := string(data)
		pe.mu.Lock()
		if len(pe.frames) < 100000 {
			pe.frames = append(pe.frames, s)
		}
		pe.mu.Unlock()
		if s == "ping" {
			pe.pings.Add(1)
		}
		var rq req
		_ = json.Unmarshal(data, &rq)
		switch rq.Op {
		case "login":
			pe.logins.Add(1)
			pe.mu.Lock()
			pe.perConn[idx]++
			pe.mu.Unlock()
		case "subscribe", "unsubscribe":
			pe.subs.Add(1)
			pe.mu.Lock()
			pe.perConn[idx]++
			pe.mu.Unlock()
		}
		if pe.handle != nil && pe.handle(p, data, rq) {
			continue
		}
		defaultOKX(p, data, rq)
	}
}

func idField(r req) string {
	if len(r.ID) == 0 {
		return ""
	}
	return `"id":` + string(r.ID) + `,`
}

func defaultOKX(p *pconn, data []byte, r req) {
	if string(data) == "ping" {
		_ = p.write("pong")
		return
	}
	switch r.Op {
	case "login":
		_ = p.write(`{` + idField(r) + `"event":"login","code":"0","msg":"","connId":"a4d3ae55"}`)
	case "subscribe", "unsubscribe":
		arg := "{}"
		if len(r.Args) > 0 {
			arg = string(r.Args[0])
		}
		_ = p.write(`{` + idField(r) + `"event":"` + r.Op + `","arg":` + arg + `,"connId":"a4d3ae55"}`)
	}
}

func (pe *peer) snapshot() []string {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	return append([]string(nil), pe.frames...)
}
