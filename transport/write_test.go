package transport_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

// Many writers at once: every message arrives whole, once, and each
// writer's messages in the order it wrote them, while the writes that
// queued left together (fewer network writes than messages).
func TestConcurrentWritesArriveWholeAndInOrder(t *testing.T) {
	t.Run("ws", func(t *testing.T) {
		srv := wstest.NewServer(wstest.WithEcho(false))
		defer srv.Close()
		concurrentWrites(t, srv, dial(t, srv.URL(), transport.Options{}))
	})
	t.Run("wss", func(t *testing.T) {
		srv := wstest.NewTLSServer(wstest.WithEcho(false))
		defer srv.Close()
		concurrentWrites(t, srv, dial(t, srv.URL(), transport.Options{TLSConfig: srv.ClientTLSConfig()}))
	})
	// Control frames join the batches: the reader's pongs to the server's
	// pings, and the client's own pings, between the writers' frames.
	t.Run("pings", func(t *testing.T) {
		srv := wstest.NewServer(wstest.WithEcho(false), wstest.WithServerPings(50*time.Millisecond)) // its ping write times out after the interval (the connection then closes): not shorter under -race on a loaded machine
		defer srv.Close()
		c := dial(t, srv.URL(), transport.Options{})
		go func() {
			for {
				if _, _, err := c.Read(); err != nil {
					return
				}
			}
		}()
		stop := make(chan struct{})
		pinged := make(chan int)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					pinged <- n
					return
				default:
				}
				if _, err := c.Ping(ctxT(t, 5*time.Second)); err != nil {
					t.Errorf("a ping among the writers: %v (conn: %v)", err, c.Err())
					pinged <- n
					return
				}
				n++
			}
		}()
		concurrentWrites(t, srv, c)
		close(stop)
		if n := <-pinged; n == 0 {
			t.Error("no ping of the client's finished while the writers wrote")
		}
		conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
		if err != nil {
			t.Fatalf("the server has no connection: %v", err)
		}
		if conns[0].PongsReceived() == 0 {
			t.Error("the server's pings got no pong while the writers wrote")
		}
	})
}

func concurrentWrites(t *testing.T, srv *wstest.Server, c *transport.Conn) {
	const writers, each = 32, 100
	// Frames of 7-bit, 16-bit and 64-bit lengths share batches.
	testutil.WriteSeq(t, writers, each, func(msg []byte) error {
		return c.Write(context.Background(), transport.MessageText, msg)
	})
	conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatalf("the server has no connection: %v", err)
	}
	got, err := conns[0].WaitReceived(ctxT(t, 10*time.Second), writers*each)
	if err != nil {
		t.Fatalf("the server got %d of %d messages: %v", conns[0].ReceivedCount(), writers*each, err)
	}
	order := testutil.NewSeqOrder(writers)
	for _, m := range got {
		order.Saw(t, m.Data)
	}
	order.Complete(t, each)
	if transport.Combined(c) == 0 {
		t.Errorf("%d messages from %d writers at once, and none left in a batch with another", writers*each, writers)
	}
	t.Logf("%d of %d messages left in a batch with others", transport.Combined(c), writers*each)
}

// gatedConn holds its next write until released, then fails the one
// after it after partial bytes: so a test can queue writes behind one in
// flight and then fail the batch that carries them.
type gatedConn struct {
	net.Conn
	mu        sync.Mutex
	hold      chan struct{} // the next write waits for it to close; nil: no hold
	held      chan struct{} // closed when a write is held
	failAfter bool          // writes after the held one fail, after partial bytes
	failing   bool
	partial   int
}

func (g *gatedConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	hold, held, failing := g.hold, g.held, g.failing
	g.hold = nil
	g.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
		g.mu.Lock()
		g.failing = g.failAfter
		g.mu.Unlock()
		return g.Conn.Write(p)
	}
	if failing {
		n := min(g.partial, len(p))
		if n > 0 {
			n, _ = g.Conn.Write(p[:n])
		}
		return n, errors.New("injected: connection reset by peer")
	}
	return g.Conn.Write(p)
}

// dialGated dials srv through g and arms its hold: the connection's next
// write waits until hold is closed (held is closed once it waits).
func dialGated(t *testing.T, srv *wstest.Server, g *gatedConn) (c *transport.Conn, hold, held chan struct{}) {
	opts := transport.Options{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		g.Conn = c
		return g, err
	}}
	c = dial(t, srv.URL(), opts)
	hold, held = make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.hold, g.held = hold, held
	g.mu.Unlock()
	return c, hold, held
}

// When the write carrying a batch fails, each message says whether any of
// its bytes left: those wholly behind the point of failure are ErrNotSent
// (safe to resend), the one it cut is not; the one in flight before the
// batch succeeded.
func TestFailedBatchSaysWhichMessagesLeft(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false))
	defer srv.Close()
	// A client frame of a 5-byte text is 2 + 4 (mask) + 5 = 11 bytes.
	for _, tc := range []struct {
		partial int
		notSent []bool // for the three queued messages
	}{
		{0, []bool{true, true, true}},
		{3, []bool{false, true, true}},
		{11, []bool{false, true, true}},
		{12, []bool{false, false, true}},
	} {
		t.Run(strconv.Itoa(tc.partial), func(t *testing.T) {
			g := &gatedConn{partial: tc.partial, failAfter: true}
			c, hold, held := dialGated(t, srv, g)
			first := make(chan error, 1)
			go func() { first <- c.Write(context.Background(), transport.MessageText, []byte("first")) }()
			<-held
			errs := make([]chan error, len(tc.notSent))
			for i := range errs {
				errs[i] = make(chan error, 1)
				go func() {
					errs[i] <- c.Write(context.Background(), transport.MessageText, []byte("msg-"+strconv.Itoa(i)))
				}()
				waitFor(t, func() bool { return transport.Queued(c) == i+1 })
			}
			close(hold)
			if err := <-first; err != nil {
				t.Fatalf("the write in flight: %v", err)
			}
			for i, ch := range errs {
				err := <-ch
				if err == nil {
					t.Fatalf("queued write %d succeeded on a failing connection", i)
				}
				if got := errors.Is(err, transport.ErrNotSent); got != tc.notSent[i] {
					t.Errorf("queued write %d: ErrNotSent %v, want %v (%v)", i, got, tc.notSent[i], err)
				}
			}
			if err := c.Write(context.Background(), transport.MessageText, []byte("after")); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("a write after the failure: %v, want ErrClosed", err)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A queued write whose ctx is cancelled, or whose deadline passes, before
// its turn is not written; the others behind the same write are.
func TestQueuedWriteCancelledOrPastItsDeadlineIsNotWritten(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false))
	defer srv.Close()
	c, hold, held := dialGated(t, srv, &gatedConn{})
	first := make(chan error, 1)
	go func() { first <- c.Write(context.Background(), transport.MessageText, []byte("first")) }()
	<-held
	cancelled, cancel := context.WithCancel(context.Background())
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(50*time.Millisecond))
	defer cancelPast()
	names := []string{"cancelled", "past", "deadline-only", "kept"}
	results := map[string]chan error{}
	for _, name := range names {
		results[name] = make(chan error, 1)
	}
	ctxs := map[string]context.Context{"cancelled": cancelled, "past": past, "kept": context.Background(),
		"deadline-only": deadlineOnly{Context: context.Background(), dl: time.Now().Add(50 * time.Millisecond)}}
	n := 0
	for _, name := range names {
		go func() { results[name] <- c.Write(ctxs[name], transport.MessageText, []byte(name)) }()
		n++
		waitFor(t, func() bool { return transport.Queued(c) == n })
	}
	cancel()
	if err := <-results["cancelled"]; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v, want context.Canceled", err)
	}
	<-past.Done()
	// Both return while the write ahead of them is still held: a deadline
	// whose Done never closes is kept by the queue's timer.
	select {
	case err := <-results["past"]:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("past its deadline while queued: %v, want DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a queued write past its ctx's deadline still waits for the write ahead")
	}
	select {
	case err := <-results["deadline-only"]:
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, transport.ErrNotSent) {
			t.Fatalf("past a deadline whose Done never closed, while queued: %v, want DeadlineExceeded and ErrNotSent", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a queued write past its deadline (Done never closed) still waits for the write ahead")
	}
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-results["kept"]; err != nil {
		t.Fatalf("the write that kept waiting: %v", err)
	}
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if _, err := conns[0].WaitReceived(ctxT(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a stray message would arrive by now
	got := conns[0].Received()
	if len(got) != 2 || string(got[0].Data) != "first" || string(got[1].Data) != "kept" {
		t.Fatalf("the server got %q, want first and kept only", got)
	}
}

// deadlineOnly has a deadline but a Done that never closes for it: the
// write queue must check the deadline itself when a message's turn comes.
type deadlineOnly struct {
	context.Context
	dl time.Time
}

func (d deadlineOnly) Deadline() (time.Time, bool) { return d.dl, true }

// A stalled peer under many writers: the write in flight times out, every
// writer returns (none hangs), and those whose bytes never left say
// ErrNotSent; pings and Close still finish.
func TestManyWritersOnAStalledPeerAllReturn(t *testing.T) {
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() == nil {
			<-c.Done() // never reads: the socket buffers fill
		}
	})
	c := dial(t, srv.URL(), transport.Options{WriteTimeout: 300 * time.Millisecond})
	big := bytes.Repeat([]byte("x"), 256<<10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var timeouts, notSent, ok int
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := c.Write(context.Background(), transport.MessageBinary, big)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, transport.ErrNotSent) || errors.Is(err, transport.ErrClosed):
					notSent++
				case errors.Is(err, transport.ErrWriteTimeout):
					timeouts++
				default:
					t.Errorf("unexpected write error: %v", err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("writers on a stalled peer still blocked after 20 s")
	}
	if timeouts == 0 {
		t.Fatalf("no write said ErrWriteTimeout (%d ok, %d not sent)", ok, notSent)
	}
	if !errors.Is(c.Err(), transport.ErrWriteTimeout) {
		t.Fatalf("Err() = %v, want the write timeout", c.Err())
	}
	ctx, cancel := context.WithTimeout(testutil.Context(t, 5*time.Second), time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err == nil {
		t.Fatal("a ping on the failed connection succeeded")
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil && !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
}

// The write deadline is kept, not cleared: after an idle spell longer than
// WriteTimeout a write, and a pong the reader writes, each find a fresh
// one; a stalled peer still fails a write within about WriteTimeout.
func TestWriteDeadlineIsFreshAfterIdle(t *testing.T) {
	srv := wstest.NewServer(wstest.WithServerPings(30 * time.Millisecond))
	defer srv.Close()
	const wt = 100 * time.Millisecond
	c := dial(t, srv.URL(), transport.Options{WriteTimeout: wt})
	go func() {
		for {
			if _, _, err := c.Read(); err != nil {
				return
			}
		}
	}()
	if err := c.Write(context.Background(), transport.MessageText, []byte("before")); err != nil {
		t.Fatal(err)
	}
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	pongs := conns[0].PongsReceived()
	time.Sleep(4 * wt) // idle: the deadline set for "before" has long passed
	if err := c.Write(context.Background(), transport.MessageText, []byte("after")); err != nil {
		t.Fatalf("a write after an idle spell: %v", err)
	}
	if c.Err() != nil {
		t.Fatalf("the connection failed while idle (a pong hit a stale deadline?): %v", c.Err())
	}
	if conns[0].PongsReceived() <= pongs {
		t.Fatal("no pong reached the server while the client was idle")
	}
	conns[0].Stall()
	big := bytes.Repeat([]byte("x"), 1<<20)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		err = c.Write(context.Background(), transport.MessageBinary, big)
	}
	if !errors.Is(err, transport.ErrWriteTimeout) {
		t.Fatalf("a write to the stalled peer: %v, want ErrWriteTimeout", err)
	}
}
