package review13

// A venue written for this review: net/http + coder/websocket, no wstest.
// It speaks Deribit-like JSON-RPC (public/subscribe with {"channels":[..]},
// result = the channels applied) or Binance (SUBSCRIBE with a params list,
// result null), and misbehaves on demand.

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type inFrame struct {
	t    time.Time
	conn int
	data []byte
}

type subReq struct {
	t        time.Time
	conn     int
	method   string
	channels []string
}

type venue struct {
	t   *testing.T
	ln  net.Listener
	srv *http.Server
	url string

	binance bool

	down       atomic.Bool  // answer upgrades with 503
	status     atomic.Int32 // answer upgrades with this status when set
	noAnswer   atomic.Bool  // never answer subscribe/unsubscribe
	twice      atomic.Bool  // answer every subscribe twice
	delay      atomic.Int64 // ns before a subscribe answer
	upgrades   atomic.Int64
	errSecret  atomic.Value // string put into refusal messages
	refuseUnsb atomic.Bool
	garbage    atomic.Value // string: raw result JSON for subscribe answers
	dupConfirm atomic.Bool  // repeat each confirmed channel many times
	otherUnsub atomic.Bool  // confirm an unsubscribe for another channel

	mu      sync.Mutex
	refuse  func(ch string) bool
	extra   []string // channels added to every subscribe answer
	conns   map[int]*websocket.Conn
	cancels map[int]context.CancelFunc
	subs    map[int]map[string]bool
	reqs    []subReq
	frames  []inFrame
	next    int
	wg      sync.WaitGroup
}

func newVenue(t *testing.T, binance bool) *venue {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := &venue{t: t, ln: ln, binance: binance, conns: map[int]*websocket.Conn{},
		cancels: map[int]context.CancelFunc{}, subs: map[int]map[string]bool{}}
	v.errSecret.Store("")
	v.garbage.Store("")
	v.srv = &http.Server{Handler: http.HandlerFunc(v.serve)}
	v.url = "ws://" + ln.Addr().String() + "/ws"
	v.wg.Add(1)
	go func() { defer v.wg.Done(); _ = v.srv.Serve(ln) }()
	t.Cleanup(v.close)
	return v
}

func (v *venue) close() {
	v.dropNow()
	_ = v.srv.Close()
	v.wg.Wait()
}

func (v *venue) setRefuse(f func(string) bool) { v.mu.Lock(); v.refuse = f; v.mu.Unlock() }
func (v *venue) setExtra(e ...string)          { v.mu.Lock(); v.extra = e; v.mu.Unlock() }

func (v *venue) dropAll() {
	// A client sees its handshake complete a moment before this venue has
	// registered the connection: give it that moment, or the drop misses it.
	for deadline := time.Now().Add(time.Second); len(v.liveConns()) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	v.dropNow()
}

// dropNow closes every connection it has now.
func (v *venue) dropNow() {
	v.mu.Lock()
	for id, c := range v.conns {
		_ = c.CloseNow()
		v.cancels[id]()
	}
	v.mu.Unlock()
}

func (v *venue) liveConns() []int {
	v.mu.Lock()
	defer v.mu.Unlock()
	var ids []int
	for id := range v.conns {
		ids = append(ids, id)
	}
	return ids
}

// subsOf returns the channels subscribed on the newest live connection.
func (v *venue) newestSubs() map[string]bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	best := -1
	for id := range v.conns {
		if id > best {
			best = id
		}
	}
	out := map[string]bool{}
	for ch := range v.subs[best] {
		out[ch] = true
	}
	return out
}

func (v *venue) requestsFor(ch string) []subReq {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []subReq
	for _, r := range v.reqs {
		for _, c := range r.channels {
			if c == ch && strings.HasSuffix(strings.ToLower(r.method), "subscribe") && !strings.Contains(strings.ToLower(r.method), "unsub") {
				out = append(out, r)
			}
		}
	}
	return out
}

func (v *venue) allFrames() []inFrame {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]inFrame(nil), v.frames...)
}

// push sends data to every live connection.
func (v *venue) push(data string) {
	v.mu.Lock()
	cs := make([]*websocket.Conn, 0, len(v.conns))
	for _, c := range v.conns {
		cs = append(cs, c)
	}
	v.mu.Unlock()
	for _, c := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.Write(ctx, websocket.MessageText, []byte(data))
		cancel()
	}
}

func (v *venue) serve(w http.ResponseWriter, r *http.Request) {
	if st := v.status.Load(); st != 0 {
		http.Error(w, "no", int(st))
		return
	}
	if v.down.Load() {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 20)
	v.upgrades.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	v.mu.Lock()
	v.next++
	id := v.next
	v.conns[id] = c
	v.cancels[id] = cancel
	v.subs[id] = map[string]bool{}
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.conns, id)
		delete(v.cancels, id)
		v.mu.Unlock()
		cancel()
		_ = c.CloseNow()
	}()
	var wmu sync.Mutex
	write := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		wctx, wc := context.WithTimeout(ctx, 2*time.Second)
		st := time.Now()
		err := c.Write(wctx, websocket.MessageText, b)
		wc()
		if len(b) > 100000 {
			v.t.Logf("venue wrote %d bytes in %v: %v", len(b), time.Since(st), err)
		}
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		v.mu.Lock()
		v.frames = append(v.frames, inFrame{t: time.Now(), conn: id, data: data})
		v.mu.Unlock()
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(data, &req) != nil || req.ID == nil {
			continue
		}
		v.handle(id, req.ID, req.Method, req.Params, write)
	}
}

func (v *venue) handle(conn int, id json.RawMessage, method string, params json.RawMessage, write func([]byte)) {
	resp := func(result any) {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
		write(b)
	}
	rpcErr := func(code int, msg string) {
		var e map[string]any
		if v.binance {
			e = map[string]any{"code": code, "msg": msg}
		} else {
			e = map[string]any{"code": code, "message": msg}
		}
		b, _ := json.Marshal(map[string]any{"id": id, "error": e})
		write(b)
	}
	var channels []string
	lm := strings.ToLower(method)
	isSub := strings.HasSuffix(lm, "subscribe")
	if isSub {
		if v.binance {
			_ = json.Unmarshal(params, &channels)
		} else {
			var p struct {
				Channels []string `json:"channels"`
			}
			_ = json.Unmarshal(params, &p)
			channels = p.Channels
		}
		v.mu.Lock()
		v.reqs = append(v.reqs, subReq{t: time.Now(), conn: conn, method: method, channels: channels})
		v.mu.Unlock()
	}
	switch {
	case isSub:
		if v.noAnswer.Load() {
			return
		}
		if d := v.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		unsub := strings.Contains(lm, "unsub")
		v.mu.Lock()
		refuse := v.refuse
		extra := v.extra
		var ok, bad []string
		for _, ch := range channels {
			if (refuse != nil && refuse(ch) && !unsub) || (unsub && v.refuseUnsb.Load()) {
				bad = append(bad, ch)
				continue
			}
			ok = append(ok, ch)
			if unsub {
				delete(v.subs[conn], ch)
			} else {
				v.subs[conn][ch] = true
			}
		}
		v.mu.Unlock()
		sec, _ := v.errSecret.Load().(string)
		n := 1
		if v.twice.Load() {
			n = 2
		}
		for i := 0; i < n; i++ {
			if v.binance {
				if len(bad) > 0 {
					rpcErr(2, "Invalid request: "+strings.Join(bad, ",")+sec)
				} else {
					resp(nil)
				}
				continue
			}
			if len(ok) == 0 && len(bad) > 0 {
				rpcErr(11050, "bad_request: refused "+strings.Join(bad, ",")+sec)
				continue
			}
			if g, _ := v.garbage.Load().(string); g != "" {
				b := []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":` + g + `}`)
				write(b)
				continue
			}
			res := append([]string{}, ok...)
			if !unsub {
				res = append(res, extra...)
			}
			if v.dupConfirm.Load() {
				for j := 0; j < 500; j++ {
					res = append(res, ok...)
				}
			}
			if unsub && v.otherUnsub.Load() {
				res = []string{"someone.else"}
			}
			resp(res)
		}
	case method == "public/test":
		resp(map[string]any{"version": "1.2.26"})
	case method == "public/set_heartbeat":
		resp("ok")
	case method == "public/auth":
		resp(map[string]any{"access_token": "acc0123456789TOKENabcdefXYZ", "refresh_token": "ref0123456789TOKENabcdefXYZ",
			"expires_in": 900, "token_type": "bearer", "scope": "session:x"})
	case method == "binance/error":
		rpcErr(2, "Invalid request: property name must be a string")
	default:
		resp(map[string]any{"echo": method})
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// has reports whether connection number n (1-based) is registered and live.
func (v *venue) has(n int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.conns[n]
	return ok
}
