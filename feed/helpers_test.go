package feed_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// roster is a discovery function the test fills.
type roster struct {
	mu   sync.Mutex
	pids []*actor.PID
}

func (r *roster) add(pid *actor.PID) {
	r.mu.Lock()
	r.pids = append(r.pids, pid)
	r.mu.Unlock()
}

func (r *roster) list() []*actor.PID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pids)
}

// connectAll connects one client per URL that delivers to the pool.
func connectAll(t *testing.T, sys *actor.ActorSystem, p *feed.Pool, r *roster, urls []string, opts ...actors.Option) []*actors.Client {
	t.Helper()
	var out []*actors.Client
	for i, url := range urls {
		deliver := actors.WithSubscriber(p.PID())
		if i%2 == 1 {
			deliver = actors.WithHandler(p.Handler()) // both ways of delivering to the pool
		}
		o := append([]actors.Option{
			deliver, actors.WithRetryCount(actors.RetryForever), actors.WithRetryDelay(10 * time.Millisecond), actors.WithMaxBackoff(50 * time.Millisecond),
			actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithLabel("c" + strconv.Itoa(i)),
		}, opts...)
		c, err := actors.Connect(testutil.Context(t, 5*time.Second), sys, url, o...)
		if err != nil {
			t.Fatalf("connect %s: %v", url, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		r.add(c.PID())
		out = append(out, c)
	}
	if err := p.Refresh(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "every client connected in the pool", func() bool {
		st, _ := p.Status(testutil.Context(t, time.Second))
		n := 0
		for _, c := range st.Clients {
			if c.Connected {
				n++
			}
		}
		return n == len(urls)
	})
	return out
}

func status(t *testing.T, p *feed.Pool) feed.Status {
	t.Helper()
	st, err := p.Status(testutil.Context(t, 30*time.Second)) // under -race a pool of 5,000 streams is slow
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// settled reports whether channel has k live, active copies and none
// being moved.
func settled(t *testing.T, p *feed.Pool, channel string, k int) bool {
	cs, ok := status(t, p).Channel(channel)
	return ok && cs.Copies == k && cs.Live == k && cs.Active == k && len(cs.Clients) == k
}

// generations sums the pool's clients' connection generations.
func generations(st feed.Status) uint64 {
	var n uint64
	for _, c := range st.Clients {
		n += c.Generation
	}
	return n
}

// book is a Deribit-like order book publisher: every change carries
// change_id and prev_change_id, and a subscribe of the book's channel is
// answered by a snapshot first, as Deribit does.
type book struct {
	mu      sync.Mutex
	srv     *wstest.Server
	channel string
	id      uint64
}

type bookData struct {
	Type   string `json:"type"`
	ID     uint64 `json:"change_id"`
	Prev   uint64 `json:"prev_change_id,omitempty"`
	SentNs int64  `json:"sent_ns"`
	// Binance's diff depth: U and u.
	First uint64 `json:"U,omitempty"`
	Last  uint64 `json:"u,omitempty"`
}

func newBook(srv *wstest.Server, channel string) *book {
	b := &book{srv: srv, channel: channel, id: 1000}
	srv.Handle("public/subscribe", func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
		var p struct {
			Channels []string `json:"channels"`
		}
		_ = json.Unmarshal(params, &p)
		b.mu.Lock()
		defer b.mu.Unlock()
		got := c.Subscribe(p.Channels...)
		if slices.Contains(got, b.channel) {
			_ = c.Publish(context.Background(), b.channel, bookData{Type: "snapshot", ID: b.id, SentNs: time.Now().UnixNano()})
		}
		return got, nil
	})
	return b
}

// current is the change_id published last.
func (b *book) current() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id
}

// change publishes the next change (ids step by 1 to 3, as Deribit's
// change_ids are not contiguous) and returns its change_id.
func (b *book) change() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := b.id
	b.id += 1 + b.id%3
	b.srv.Publish(b.channel, bookData{Type: "change", ID: b.id, Prev: prev, SentNs: time.Now().UnixNano()})
	return b.id
}

// trade publishes the next trade of channel (no sequence the venue's
// Sequencer reads: the pool de-duplicates it by content), numbered by
// change_id + 1 for the checker, and returns its number.
func (b *book) trade(channel string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.id++
	b.srv.Publish(channel, bookData{Type: "trade", ID: b.id, SentNs: time.Now().UnixNano()})
	return b.id
}

// depth publishes the next Binance diff depth event of channel (U is the
// last event's u + 1, u = U + 0..2) and returns its u.
func (b *book) depth(channel string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.id + 1
	b.id = first + b.id%3
	b.srv.PublishStream(channel, bookData{Type: "depth", ID: b.id, First: first, Last: b.id, SentNs: time.Now().UnixNano()})
	return b.id
}

// checker is the pool's handler: it checks that the changes come once
// each, in order, and counts gap notices.
type checker struct {
	mu         sync.Mutex
	last       uint64
	delivered  int
	duplicates int
	broken     int // a change whose prev_change_id is not the last delivered
	gaps       int
	gapLog     []actors.Gap
	lat        []time.Duration
}

func (c *checker) handle(in actors.Inbound) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.Kind == actors.KindGap {
		c.gaps++
		c.gapLog = append(c.gapLog, *in.Gap)
		return
	}
	var n struct {
		Params struct {
			Data bookData `json:"data"`
		} `json:"params"`
		Data bookData `json:"data"` // Binance's combined stream
	}
	_ = json.Unmarshal(in.Data, &n)
	d := n.Params.Data
	if d.Type == "" {
		d = n.Data
	}
	c.lat = append(c.lat, time.Since(time.Unix(0, d.SentNs)))
	switch {
	case d.ID <= c.last:
		c.duplicates++
	case c.last != 0 && d.Type == "change" && d.Prev != c.last, c.last != 0 && d.Type == "trade" && d.ID != c.last+1,
		c.last != 0 && d.Type == "depth" && d.First != c.last+1:
		c.broken++
	}
	c.last = max(c.last, d.ID)
	c.delivered++
}

func (c *checker) lastID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// percentiles returns p50 and p99 of what the checker measured.
func (c *checker) percentiles() (p50, p99 time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return quantiles(c.lat)
}

func quantiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)*99/100]
}

// slowProxy forwards TCP connections to addr on 127.0.0.1, delaying what
// the server sends by delay (a slow path: the client's writes go through
// at once).
type slowProxy struct {
	ln    net.Listener
	addr  string
	delay time.Duration
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newSlowProxy(t *testing.T, addr string, delay time.Duration) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{ln: ln, addr: addr, delay: delay}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *slowProxy) URL() string { return "ws://" + p.ln.Addr().String() + "/" }

func (p *slowProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.addr)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(s, c); _ = s.Close(); _ = c.Close() }()
		go func() { defer p.wg.Done(); p.delayed(c, s); _ = s.Close(); _ = c.Close() }()
	}
}

// delayed copies from to dst, each chunk delay after it was read.
func (p *slowProxy) delayed(dst, src net.Conn) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				for range q { // drain until the reader ends
				}
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{at: time.Now().Add(p.delay), b: slices.Clone(buf[:n])}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

func (p *slowProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
