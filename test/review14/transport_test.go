package review14

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// payload is message seq of writer w: "w-seq|" then filler up to size.
func payload(w, seq, size int) []byte {
	p := []byte(fmt.Sprintf("%d-%d|", w, seq))
	for len(p) < size {
		p = append(p, byte('a'+(w+seq+len(p))%26))
	}
	return p
}

func tag(p []byte) string {
	if i := bytes.IndexByte(p, '|'); i >= 0 {
		return string(p[:i])
	}
	return "?" + string(p[:min(len(p), 20)])
}

// received collects what a hostile peer read, frame by frame.
type received struct {
	mu     sync.Mutex
	tags   map[string]int
	bad    []string
	closeR bool // the peer got the client's close frame
	end    error
	frames int
}

func newReceived() *received { return &received{tags: map[string]int{}} }

func (r *received) add(t *testing.T, f hostile.ReadFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames++
	switch f.Opcode {
	case hostile.OpText, hostile.OpBinary:
		if !f.Fin {
			r.bad = append(r.bad, "fragmented frame")
			return
		}
		tg := tag(f.Payload)
		var w, seq int
		if _, err := fmt.Sscanf(tg, "%d-%d", &w, &seq); err != nil || !bytes.Equal(f.Payload, payload(w, seq, len(f.Payload))) {
			r.bad = append(r.bad, "corrupt payload "+tg)
			return
		}
		r.tags[tg]++
	case hostile.OpClose:
		r.closeR = true
	}
}

func dialT(t *testing.T, url string, o transport.Options) *transport.Conn {
	t.Helper()
	c, err := transport.Dial(testutil.Context(t, 10*time.Second), url, o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// readAll runs Read until it fails.
func readAll(c *transport.Conn) <-chan error {
	ch := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(); err != nil {
				ch <- err
				return
			}
		}
	}()
	return ch
}

type outcome struct {
	tag string
	err error
}

// writers runs n writers on c until stop closes or a write fails; sizes
// cycles through the message sizes.
func writers(c *transport.Conn, n int, sizes []int, stop <-chan struct{}) []outcome {
	var mu sync.Mutex
	var out []outcome
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				p := payload(w, seq, sizes[(w+seq)%len(sizes)])
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := c.Write(ctx, transport.MessageBinary, p)
				cancel()
				mu.Lock()
				out = append(out, outcome{tag(p), err})
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return out
}

// check: a Write that says ErrNotSent was not received; one that returned
// nil was received (when all reached the peer); nothing twice or corrupt.
func check(t *testing.T, out []outcome, r *received, allDelivered bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		t.Errorf("peer: %s", b)
	}
	var nilOK, notSent, maybe int
	for _, o := range out {
		n := r.tags[o.tag]
		if n > 1 {
			t.Errorf("%s received %d times", o.tag, n)
		}
		switch {
		case o.err == nil:
			nilOK++
			if allDelivered && n == 0 {
				t.Errorf("%s: Write returned nil but the peer never got it", o.tag)
			}
		case errors.Is(o.err, transport.ErrNotSent):
			notSent++
			if n > 0 {
				t.Errorf("%s: Write said ErrNotSent (%v) but the peer received it", o.tag, o.err)
			}
		default:
			maybe++
		}
	}
	t.Logf("writes: %d ok, %d not sent, %d maybe sent; peer got %d", nilOK, notSent, maybe, len(r.tags))
}

// The peer closes (1000) while 32 writers stream: the client's reader
// answers with its close frame, which must reach the peer (RFC 6455
// 5.5.1). coder/websocket writes that reply, then closes the TCP
// connection at once; when the reply joined an open batch (transport
// write combining), it is still in the batch buffer then, and never leaves.
func TestPeerCloseDuringBatchGetsCloseReply(t *testing.T) {
	const rounds = 30
	var lost atomic.Int64
	results := make(chan *received, rounds)
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		r := newReceived()
		defer func() { results <- r }()
		for i := 0; i < 200; i++ {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			r.add(t, f)
		}
		if c.WriteClose(1000, "bye") != nil {
			return
		}
		for {
			f, err := c.ReadFrame()
			if err != nil {
				lost.Add(1)
				return
			}
			r.add(t, f)
			if f.Opcode == hostile.OpClose {
				return
			}
		}
	})
	for round := 0; round < rounds; round++ {
		c := dialT(t, srv.URL(), transport.Options{})
		rerr := readAll(c)
		stop := make(chan struct{})
		outCh := make(chan []outcome, 1)
		go func() { outCh <- writers(c, 32, []int{16, 64, 300}, stop) }()
		var r *received
		select {
		case r = <-results:
		case <-time.After(30 * time.Second):
			t.Fatal("peer did not finish within 30s")
		}
		close(stop)
		out := <-outCh
		var ce *transport.CloseError
		if err := <-rerr; !errors.As(err, &ce) || ce.Code != 1000 {
			t.Logf("round %d: Read: %v", round, err)
		}
		check(t, out, r, false)
		r.mu.Lock()
		if !r.closeR {
			t.Errorf("round %d: the peer's close got no close frame back (the TCP connection was cut)", round)
		}
		r.mu.Unlock()
		_ = c.CloseNow()
	}
	t.Logf("close replies lost: %d of %d", lost.Load(), rounds)
}

// collect reads the client's frames into a received, answering its close
// frame with 1000, until the connection ends, and sends it on results.
func collect(t *testing.T, c *hostile.Conn, results chan<- *received) {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := newReceived()
	defer func() { results <- r }()
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return
		}
		r.add(t, f)
		if f.Opcode == hostile.OpClose {
			_ = c.WriteClose(1000, "")
			return
		}
	}
}

// The peer reads some frames, then resets the connection (RST) while 32
// writers send messages from 10 bytes to 200 KiB: ErrNotSent is said only
// of messages the peer did not receive, and what it received is intact.
func TestResetMidBatchNotSentIsTrue(t *testing.T) { resetMidBatch(t, false, 10, 50, 37) }

// resetMidBatch runs rounds of: the peer (over TLS or not) reads
// base+round*step frames, then resets the connection (RST) while 32
// writers send; check holds the writers' outcomes to what it received.
func resetMidBatch(t *testing.T, useTLS bool, rounds, base, step int) {
	for round := 0; round < rounds; round++ {
		results := make(chan *received, 1)
		after := base + round*step
		script := func(c *hostile.Conn) {
			if c.Handshake() != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			r := newReceived()
			for i := 0; i < after; i++ {
				f, err := c.ReadFrame()
				if err != nil {
					break
				}
				r.add(t, f)
			}
			var raw net.Conn = c.Conn
			if tc, ok := raw.(interface{ NetConn() net.Conn }); ok { // under TLS
				raw = tc.NetConn()
			}
			if tc, ok := raw.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = raw.Close()
			results <- r
		}
		opts := transport.Options{WriteTimeout: 5 * time.Second}
		var srv *hostile.Server
		if useTLS {
			srv = hostile.NewTLSServer(t, script)
			opts.TLSConfig = srv.ClientTLSConfig()
		} else {
			srv = hostile.NewServer(t, script)
		}
		c := dialT(t, srv.URL(), opts)
		rerr := readAll(c)
		stop := make(chan struct{})
		out := writers(c, 32, []int{10, 100, 1000, 200 << 10, 20, 60 << 10}, stop)
		var r *received
		select {
		case r = <-results:
		case <-time.After(30 * time.Second):
			t.Fatal("peer did not finish")
		}
		close(stop)
		check(t, out, r, false)
		_ = c.CloseNow()
		<-rerr
		srv.Close()
	}
}

// A well-behaved peer reads everything until the client's Close: every
// Write that returned nil arrived, exactly once, intact; Close returns nil
// and the peer gets the close frame.
func TestCloseWhileBatchingNothingDroppedSilently(t *testing.T) {
	for round := 0; round < 10; round++ {
		results := make(chan *received, 1)
		srv := hostile.NewServer(t, func(c *hostile.Conn) {
			if c.Handshake() != nil {
				return
			}
			collect(t, c, results)
		})
		c := dialT(t, srv.URL(), transport.Options{})
		rerr := readAll(c)
		stop := make(chan struct{})
		outCh := make(chan []outcome, 1)
		go func() { outCh <- writers(c, 32, []int{16, 64, 3000, 70 << 10}, stop) }()
		time.Sleep(time.Duration(20+round*10) * time.Millisecond)
		cerr := c.Close(1000, "done")
		close(stop)
		out := <-outCh
		var r *received
		select {
		case r = <-results:
		case <-time.After(30 * time.Second):
			t.Fatal("peer did not finish")
		}
		if cerr != nil {
			t.Errorf("round %d: Close: %v", round, cerr)
		}
		r.mu.Lock()
		if !r.closeR {
			t.Errorf("round %d: the peer got no close frame", round)
		}
		r.mu.Unlock()
		check(t, out, r, true)
		<-rerr
		srv.Close()
	}
}

// A peer that stops reading: writers queue behind a stalled write; those
// whose ctx is cancelled while queued return at once with ctx's error and
// are never written, even once the peer reads again.
func TestCancelledWhileQueuedNeverWritten(t *testing.T) {
	resume := make(chan struct{})
	results := make(chan *received, 1)
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(16 << 10)
		}
		if c.Handshake() != nil {
			return
		}
		select {
		case <-resume:
		case <-c.Done():
			return
		}
		collect(t, c, results)
	})
	c := dialT(t, srv.URL(), transport.Options{WriteTimeout: 30 * time.Second, NetDial: smallBuffers})
	rerr := readAll(c)
	big := make(chan error, 1)
	bigMsg := payload(999, 0, 12<<20)
	go func() { big <- c.Write(context.Background(), transport.MessageBinary, bigMsg) }()
	time.Sleep(500 * time.Millisecond) // the big write has filled the socket buffers
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cancelled, written []string
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			if w%2 == 0 {
				time.AfterFunc(time.Duration(w)*time.Millisecond, cancel)
			} else {
				defer cancel()
			}
			p := payload(w, 0, 100+w*50)
			err := c.Write(ctx, transport.MessageBinary, p)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case w%2 == 0 && errors.Is(err, context.Canceled):
				cancelled = append(cancelled, tag(p))
			case w%2 == 0:
				t.Errorf("writer %d (cancelled while queued): %v", w, err)
			case err == nil:
				written = append(written, tag(p))
			default:
				t.Errorf("writer %d: %v", w, err)
			}
		}(w)
		if w == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // every cancel has fired
	close(resume)
	wg.Wait()
	if err := <-big; err != nil {
		t.Errorf("big write: %v", err)
	}
	if err := c.Close(1000, ""); err != nil {
		t.Errorf("Close: %v", err)
	}
	<-rerr
	var r *received
	select {
	case r = <-results:
	case <-time.After(30 * time.Second):
		t.Fatal("peer did not finish")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tg := range cancelled {
		if r.tags[tg] > 0 {
			t.Errorf("%s: cancelled while queued, yet written", tg)
		}
	}
	for _, tg := range written {
		if r.tags[tg] != 1 {
			t.Errorf("%s: Write returned nil, peer got it %d times", tg, r.tags[tg])
		}
	}
	t.Logf("cancelled %d, written %d", len(cancelled), len(written))
}

// Reads return exact copies that later reads never touch: messages from
// 0 bytes to 3 MiB (past the pooled buffer's limit), fragmented and not,
// kept and compared after all were read.
func TestReadCopiesAreOwned(t *testing.T) {
	sizes := []int{0, 1, 4095, 4096, 4097, 64 << 10, 3 << 20, 5, 1 << 20, (1 << 20) + 1, 100}
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		for i, n := range sizes {
			p := payload(i, n, n+10)
			if i%2 == 0 {
				_ = c.WriteFrame(true, hostile.OpBinary, false, p)
				continue
			}
			// three fragments with a ping between
			a, b := len(p)/3, 2*len(p)/3
			_ = c.WriteFrame(false, hostile.OpBinary, false, p[:a])
			_ = c.WriteFrame(true, hostile.OpPing, false, []byte("x"))
			_ = c.WriteFrame(false, hostile.OpContinuation, false, p[a:b])
			_ = c.WriteFrame(true, hostile.OpContinuation, false, p[b:])
		}
		c.Hold()
	})
	c := dialT(t, srv.URL(), transport.Options{})
	var got [][]byte
	for range sizes {
		_, d, err := c.Read()
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		got = append(got, d)
	}
	for i, n := range sizes {
		if want := payload(i, n, n+10); !bytes.Equal(got[i], want) {
			t.Errorf("message %d (%d bytes) changed after later reads (len %d)", i, n+10, len(got[i]))
		}
		if cap(got[i]) != len(got[i]) {
			t.Logf("message %d: cap %d > len %d (appending is safe but shares no buffer?)", i, cap(got[i]), len(got[i]))
		}
	}
	_ = c.CloseNow()
}

// smallBuffers dials with a 16 KiB send buffer, so that a peer that does
// not read stalls a write of a few MiB.
func smallBuffers(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(16 << 10)
		}
	}
	return c, err
}
