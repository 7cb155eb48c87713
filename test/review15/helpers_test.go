// Package review15 holds adversarial tests of issue 15's parts 1 and 2:
// the sequence guards per channel (KindGap, resubscribe and snapshot
// resyncs) and the freshness rules (silent channels resubscribed, stalled
// connections rotated). Every peer here is written by hand on coder/websocket
// (Deribit and Binance spellings), not transport/wstest. Tests that fail are
// findings (FINDINGS.md); they stay as guards once fixed.
package review15

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

// req is one request a client sent to the peer.
type req struct {
	ID       json.RawMessage
	Method   string
	Channels []string
	Binance  bool
}

func parseReq(data []byte) (req, bool) {
	var r struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(data, &r) != nil || r.ID == nil {
		return req{}, false
	}
	out := req{ID: r.ID, Method: r.Method}
	if len(r.Params) > 0 && r.Params[0] == '[' {
		out.Binance = true
		_ = json.Unmarshal(r.Params, &out.Channels)
	} else {
		var p struct {
			Channels []string `json:"channels"`
		}
		_ = json.Unmarshal(r.Params, &p)
		out.Channels = p.Channels
	}
	return out, true
}

func (r req) isSub() bool   { return r.Method == "public/subscribe" || r.Method == "SUBSCRIBE" }
func (r req) isUnsub() bool { return r.Method == "public/unsubscribe" || r.Method == "UNSUBSCRIBE" }

// vconn is one connection of the peer.
type vconn struct {
	s   *vsrv
	ws  *websocket.Conn
	n   int64 // 1 for the first connection
	mu  sync.Mutex
	sub map[string]bool
}

func (c *vconn) write(s string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, []byte(s))
}

func (c *vconn) subscribed(ch string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sub[ch]
}

// answer answers r as its venue would: Deribit, the list of channels;
// Binance, a null result.
func (c *vconn) answer(r req) {
	if r.Binance {
		_ = c.write(`{"result":null,"id":` + string(r.ID) + `}`)
		return
	}
	res := `"ok"`
	if r.isSub() || r.isUnsub() {
		b, _ := json.Marshal(r.Channels)
		res = string(b)
	}
	_ = c.write(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"result":` + res + `}`)
}

func (c *vconn) refuse(r req) {
	_ = c.write(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"error":{"code":10001,"message":"refused"}}`)
}

// vsrv is a scriptable venue. Its hooks are set before the client
// connects and are called on the connection's reader goroutine.
type vsrv struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	conns  []*vconn
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}

	// onReq handles a request; it returns false to let the default answer it.
	onReq func(c *vconn, r req) bool
	// afterSub runs after a subscribe of ch was answered on c (k: the
	// how-many-th subscribe of ch over the peer's life, from 1).
	afterSub func(c *vconn, ch string, k int64)

	accepts atomic.Int64
	subs    atomic.Int64 // subscribe requests
	unsubs  atomic.Int64 // unsubscribe requests
	subsOf  sync.Map     // channel -> *atomic.Int64
	reqs    atomic.Int64
	refuse  atomic.Bool // answer handshakes with 503
}

func newVenue(t *testing.T) *vsrv {
	s := &vsrv{t: t, stop: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.close)
	return s
}

func (s *vsrv) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

func (s *vsrv) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	cs := s.conns
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.ws.CloseNow()
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
	s.wg.Wait()
}

// go runs fn on a goroutine the peer waits for on close.
func (s *vsrv) goRun(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); fn() }()
	return true
}

func (s *vsrv) stopped() <-chan struct{} { return s.stop }

// last is the newest connection (nil before the first).
func (s *vsrv) last() *vconn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		return nil
	}
	return s.conns[len(s.conns)-1]
}

// dropAll closes every connection abruptly.
func (s *vsrv) dropAll() {
	s.mu.Lock()
	cs := s.conns
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.ws.CloseNow()
	}
}

func (s *vsrv) subsFor(ch string) int64 {
	v, _ := s.subsOf.LoadOrStore(ch, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (s *vsrv) handle(w http.ResponseWriter, r *http.Request) {
	if s.refuse.Load() {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(64 << 20)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	c := &vconn{s: s, ws: ws, n: s.accepts.Add(1), sub: map[string]bool{}}
	s.conns = append(s.conns, c)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer ws.CloseNow()
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		rq, ok := parseReq(data)
		if !ok {
			continue
		}
		s.reqs.Add(1)
		if rq.isSub() {
			s.subs.Add(1)
		}
		if rq.isUnsub() {
			s.unsubs.Add(1)
		}
		if s.onReq != nil && s.onReq(c, rq) {
			continue
		}
		s.def(c, rq)
	}
}

// def is the default handling of a request: answer it, track the
// connection's channels, then afterSub.
func (s *vsrv) def(c *vconn, rq req) {
	c.mu.Lock()
	for _, ch := range rq.Channels {
		if rq.isSub() {
			c.sub[ch] = true
		}
		if rq.isUnsub() {
			delete(c.sub, ch)
		}
	}
	c.mu.Unlock()
	c.answer(rq)
	if rq.isSub() {
		for _, ch := range rq.Channels {
			v, _ := s.subsOf.LoadOrStore(ch, new(atomic.Int64))
			k := v.(*atomic.Int64).Add(1)
			if s.afterSub != nil {
				s.afterSub(c, ch, k)
			}
		}
	}
}

// Deribit frames.
func dSnap(ch string, id uint64) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":%q,"data":{"type":"snapshot","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":%d,"bids":[["new",100.0,1.0]],"asks":[["new",101.0,1.0]]}}}`, ch, id)
}

func dChange(ch string, id, prev uint64) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":%q,"data":{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL","prev_change_id":%d,"change_id":%d,"bids":[["change",100.0,2.0]],"asks":[]}}}`, ch, prev, id)
}

// Binance frames.
func bDepth(ch string, first, last uint64) string {
	return fmt.Sprintf(`{"stream":%q,"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":%d,"u":%d,"b":[["1.0","2.0"]],"a":[]}}`, ch, first, last)
}

// inbox collects what a client delivers.
type inbox struct {
	mu  sync.Mutex
	all []actors.Inbound
	n   atomic.Int64
}

func (b *inbox) handler(in actors.Inbound) {
	b.mu.Lock()
	b.all = append(b.all, in)
	b.mu.Unlock()
	b.n.Add(1)
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

func isGap(ch string) func(actors.Inbound) bool {
	return func(m actors.Inbound) bool { return m.Kind == actors.KindGap && m.Gap != nil && m.Gap.Channel == ch }
}

func isSnap(ch string) func(actors.Inbound) bool {
	return func(m actors.Inbound) bool {
		return m.Kind == actors.KindNotification && m.Channel == ch && m.Snapshot
	}
}

func isNote(ch string) func(actors.Inbound) bool {
	return func(m actors.Inbound) bool { return m.Kind == actors.KindNotification && m.Channel == ch }
}

// bookMsg is what a consumer reads of a Deribit book or a Binance depth
// notification, or of a snapshot our fetch returned.
type bookMsg struct {
	Params struct {
		Data struct {
			Type   string  `json:"type"`
			Change *uint64 `json:"change_id"`
			Prev   *uint64 `json:"prev_change_id"`
		} `json:"data"`
	} `json:"params"`
	Data struct {
		U1 *uint64 `json:"U"`
		U2 *uint64 `json:"u"`
	} `json:"data"`
	LastUpdateID *uint64 `json:"lastUpdateId"`
}

// checkBook plays a consumer that keeps one book per channel, from the
// guarantees of docs/market-data.md: every update given follows the one
// before or is a snapshot; after a KindGap the next notification of the
// channel is a snapshot (reconnect: a snapshot here too, both venues start
// with one); nothing twice. It returns the violations (at most 20).
func checkBook(msgs []actors.Inbound) []string {
	type st struct {
		synced bool
		last   uint64
		seen   map[uint64]bool
	}
	books := map[string]*st{}
	get := func(ch string) *st {
		b := books[ch]
		if b == nil {
			b = &st{seen: map[uint64]bool{}}
			books[ch] = b
		}
		return b
	}
	var bad []string
	add := func(f string, a ...any) {
		if len(bad) < 20 {
			bad = append(bad, fmt.Sprintf(f, a...))
		}
	}
	for i, m := range msgs {
		if m.Kind == actors.KindGap {
			if m.Gap == nil {
				add("#%d: KindGap without Gap", i)
				continue
			}
			b := get(m.Gap.Channel)
			b.synced = false
			continue
		}
		if m.Kind != actors.KindNotification {
			continue
		}
		var bm bookMsg
		if json.Unmarshal(m.Data, &bm) != nil {
			add("#%d %s: undecodable %q", i, m.Channel, trunc(m.Data))
			continue
		}
		b := get(m.Channel)
		switch {
		case bm.LastUpdateID != nil: // our snapshot fetch (Binance)
			if !m.Snapshot {
				add("#%d %s: fetched snapshot not marked Snapshot", i, m.Channel)
			}
			b.synced, b.last = true, *bm.LastUpdateID
		case bm.Params.Data.Change != nil: // Deribit
			id := *bm.Params.Data.Change
			if bm.Params.Data.Type == "snapshot" {
				if !m.Snapshot {
					add("#%d %s: snapshot %d not marked Snapshot", i, m.Channel, id)
				}
				b.synced, b.last = true, id
				b.seen[id] = true
				continue
			}
			if m.Snapshot {
				add("#%d %s: change %d marked Snapshot", i, m.Channel, id)
			}
			if !b.synced {
				add("#%d %s: change %d delivered while out of sync (no snapshot since the gap/start)", i, m.Channel, id)
				continue
			}
			if b.seen[id] {
				add("#%d %s: change %d delivered twice", i, m.Channel, id)
			}
			b.seen[id] = true
			if bm.Params.Data.Prev == nil || *bm.Params.Data.Prev != b.last {
				add("#%d %s: change %d (prev %v) does not follow %d, no KindGap before it", i, m.Channel, id, ptr(bm.Params.Data.Prev), b.last)
			}
			b.last = id
		case bm.Data.U1 != nil && bm.Data.U2 != nil: // Binance diff depth
			f, l := *bm.Data.U1, *bm.Data.U2
			if !b.synced {
				add("#%d %s: update %d-%d delivered while out of sync", i, m.Channel, f, l)
				continue
			}
			if !(f <= b.last+1 && b.last+1 <= l) {
				add("#%d %s: update %d-%d does not follow %d, no KindGap before it", i, m.Channel, f, l, b.last)
			}
			b.last = l
		default:
			if m.Snapshot {
				b.synced = true
			}
		}
	}
	return bad
}

func ptr(p *uint64) any {
	if p == nil {
		return "none"
	}
	return *p
}

func trunc(b []byte) string {
	if len(b) > 130 {
		return string(b[60:130]) + "..."
	}
	return string(b)
}

// connect connects a client with fast backoff, no heartbeat, no host dial
// rate, a generous outbound limiter, and registers Close.
func connect(t *testing.T, url string, opts ...actors.Option) *actors.Client {
	t.Helper()
	base := []actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(200 * time.Millisecond),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryCount(actors.RetryForever),
		actors.WithRequestTimeout(2 * time.Second),
		actors.Option(func(c *actors.Config) { c.HostDialRate = 0; c.StableAfter = 100 * time.Millisecond }),
	}
	all := append(base, opts...)
	all = append(all, actors.WithRateLimiter(ratelimit.Simple(100000, 100000), actors.RateWait))
	c, err := actors.Connect(testutil.Context(t, 10*time.Second), testutil.NewSystem(t), url, all...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctx(t *testing.T) context.Context { return testutil.Context(t, 5*time.Second) }

func chanState(c *actors.Client, ch string) actors.ChannelState {
	for _, s := range c.Health().Channels {
		if s.Channel == ch {
			return s.State
		}
	}
	return 0
}

func dump(msgs []actors.Inbound, max int) string {
	var sb strings.Builder
	for i, m := range msgs {
		if i >= max {
			fmt.Fprintf(&sb, "... %d more\n", len(msgs)-max)
			break
		}
		if m.Kind == actors.KindGap {
			fmt.Fprintf(&sb, "#%d GAP %+v\n", i, *m.Gap)
			continue
		}
		fmt.Fprintf(&sb, "#%d %v snap=%v gen=%d %s\n", i, m.Kind, m.Snapshot, m.Generation, trunc(m.Data))
	}
	return sb.String()
}

// waitFor is testutil.Eventually that shows the client and what it
// delivered when it times out.
func waitFor(t *testing.T, d time.Duration, what string, c *actors.Client, in *inbox, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			h := c.Health()
			msgs := in.snapshot()
			if len(msgs) > 60 {
				msgs = msgs[len(msgs)-12:]
			}
			t.Fatalf("timed out after %v waiting for %s\nchannels %+v\ngaps %d resyncs %d dropped %d snapfail %d stale %d stalls %d gen %d\nlast delivered:\n%s",
				d, what, h.Channels, h.SequenceGaps, h.Resyncs, h.SequenceDropped, h.SnapshotFailures, h.StaleResubscribes, h.Stalls, h.Generation, dump(msgs, 12))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribeBook subscribes ch and waits for its first snapshot to be
// delivered (the peer writes it after its answer).
func subscribeBook(t *testing.T, c *actors.Client, in *inbox, chs ...string) {
	t.Helper()
	if err := c.Subscribe(ctx(t), chs...); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		waitFor(t, 3*time.Second, "the first snapshot of "+ch, c, in, func() bool { return in.count(isSnap(ch)) >= 1 })
	}
}
