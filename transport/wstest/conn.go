package wstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// ErrStalled is returned by Conn.Send and friends while the connection is
// stalled (see Conn.Stall): a stalled connection sends nothing.
var ErrStalled = errors.New("wstest: connection is stalled")

// ErrConnClosed is returned by the waits of a Conn once the connection has
// ended and the awaited condition can no longer become true.
var ErrConnClosed = errors.New("wstest: connection closed")

// closeHandshakeTimeout bounds Conn.Disconnect.
const closeHandshakeTimeout = time.Second

// Message is a data message received by the server.
type Message struct {
	Type websocket.MessageType // websocket.MessageText or websocket.MessageBinary
	Data []byte
	At   time.Time // when the server finished reading it
}

// Conn is the server side of one accepted WebSocket connection. All methods
// are safe for concurrent use.
type Conn struct {
	s           *Server
	id          int
	req         *http.Request
	ws          *websocket.Conn
	gate        *gateConn
	subprotocol string

	ctx    context.Context // canceled when the connection ends
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup // ping and heartbeat goroutines

	stalled        atomic.Bool
	pingsSent      atomic.Int64
	pongsReceived  atomic.Int64
	pingsReceived  atomic.Int64
	heartbeatsSent atomic.Int64
	testRequests   atomic.Int64
	hbTimedOut     atomic.Bool

	mu            sync.Mutex
	changed       chan struct{} // closed and replaced on every state change
	received      []Message
	receivedCount int
	channels      map[string]struct{}
	authExpiry    time.Time // zero until the first successful public/auth
	authClientID  string
	authCount     int
	authGrants    []string
	closeKnown    bool
	closeCode     websocket.StatusCode
	closeReason   string
	ended         bool
	hbStarted     bool
	hbInterval    time.Duration
	hbKick        chan struct{}

	ownAccount *account // rate limits while unauthenticated; guarded by s.d.mu

	okx *okxConn // nil outside OKX mode
}

func newConn(s *Server, r *http.Request, gate *gateConn) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		s:        s,
		req:      r.Clone(context.Background()),
		gate:     gate,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		channels: make(map[string]struct{}),
		hbKick:   make(chan struct{}, 1),
		okx:      okxFor(s),
	}
}

func okxFor(s *Server) *okxConn {
	if !s.cfg.okx {
		return nil
	}
	return newOKXConn()
}

// run serves the accepted connection until it ends. It runs on the HTTP
// handler goroutine.
func (c *Conn) run(ws *websocket.Conn) {
	ws.SetReadLimit(c.s.cfg.readLimit)
	c.ws = ws
	c.subprotocol = ws.Subprotocol()
	if !c.s.register(c) {
		c.finish(false)
		return
	}
	c.s.connOpened(c)
	if d := c.s.cfg.pingInterval; d > 0 {
		c.wg.Add(1)
		go c.pingLoop(d)
	}
	if d := c.s.cfg.heartbeatInterval; d > 0 {
		c.SetHeartbeat(d)
	}
	if c.okx != nil {
		c.okxTouch()
		c.wg.Add(1)
		go c.okxIdleLoop(c.s.cfg.okxIdle)
	}
	if d := c.s.cfg.maxConnAge; d > 0 {
		c.wg.Add(1)
		go c.ageLoop(d)
	}
	c.readLoop()
	c.finish(true)
}

// finish tears the connection down and waits for its goroutines.
func (c *Conn) finish(registered bool) {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	c.cancel()
	_ = c.gate.Close()
	_ = c.ws.CloseNow()
	c.wg.Wait()
	if registered {
		c.s.unregister(c)
		c.s.connEnded(c) // cancel-on-disconnect (deribit_orders.go)
	}
	c.setCloseReason(-1, "")
	c.mu.Lock()
	c.notifyLocked()
	c.mu.Unlock()
	close(c.done)
}

func (c *Conn) readLoop() {
	for {
		// No deadline: the loop ends when the TCP connection is closed.
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				c.setCloseReason(ce.Code, ce.Reason)
			}
			return
		}
		c.mu.Lock()
		c.receivedCount++
		if len(c.received) < c.s.cfg.captureLimit {
			c.received = append(c.received, Message{Type: typ, Data: data, At: time.Now()})
		}
		c.notifyLocked()
		c.mu.Unlock()
		if c.okx != nil {
			c.okxTouch()
			c.okxDispatch(typ, data)
			continue
		}
		c.dispatch(typ, data)
	}
}

// dispatch answers a JSON-RPC request if there is a responder for it and
// echoes the message otherwise (if echo is on). With WithDeribitCredits a
// request that finds too few credits is refused and ends the connection.
func (c *Conn) dispatch(typ websocket.MessageType, data []byte) {
	if typ == websocket.MessageText {
		if req, ok := parseRequest(data); ok {
			if !c.s.admit(c, req.method) {
				c.rejectTooManyRequests(req)
				return
			}
			if req.method == "public/test" {
				c.testRequests.Add(1)
			}
			if fn := c.s.responder(req.method); fn != nil {
				result, rpcErr := fn(c, req.params)
				if req.id != nil {
					_ = c.write(c.ctx, websocket.MessageText, encodeReply(req.id, result, rpcErr))
				}
				if after := c.s.afterAnswer(req.method); after != nil {
					after(c)
				}
				return
			}
		}
	}
	if c.s.cfg.echo {
		_ = c.write(c.ctx, typ, data)
	}
}

// write sends one message with the server's write timeout.
func (c *Conn) write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	if c.stalled.Load() {
		return ErrStalled
	}
	ctx, cancel := context.WithTimeout(ctx, c.s.cfg.writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, typ, data)
}

func (c *Conn) pingLoop(interval time.Duration) {
	defer c.wg.Done()
	timeout := min(interval, c.s.cfg.writeTimeout)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.stalled.Load() {
			continue
		}
		c.pingsSent.Add(1)
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		_ = c.ws.Ping(ctx)
		cancel()
	}
}

func (c *Conn) onPing(context.Context, []byte) bool {
	c.pingsReceived.Add(1)
	return true
}

func (c *Conn) onPong(context.Context, []byte) {
	c.pongsReceived.Add(1)
}

func (c *Conn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// setCloseReason records how the connection ended; the first call wins.
func (c *Conn) setCloseReason(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeKnown {
		return
	}
	c.closeKnown, c.closeCode, c.closeReason = true, code, reason
	c.notifyLocked()
}

// waitFor waits until cond, evaluated with c.mu held, is true.
func (c *Conn) waitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, ch := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-c.done:
			c.mu.Lock()
			ok = cond()
			c.mu.Unlock()
			if ok {
				return nil
			}
			return ErrConnClosed
		default:
		}
		select {
		case <-ch:
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ID returns the connection's 1-based accept order. IDs are assigned when
// the upgrade request is accepted, before the 101 response is sent.
func (c *Conn) ID() int { return c.id }

// Request returns a copy of the HTTP upgrade request (headers, URL with
// query, TLS state).
func (c *Conn) Request() *http.Request { return c.req.Clone(context.Background()) }

// Subprotocol returns the negotiated subprotocol ("" if none).
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Send injects a data message. The write is bounded by ctx and by the
// server's write timeout; as with coder/websocket, if the write does not
// complete in time the connection is closed. Send fails with ErrStalled
// while the connection is stalled.
func (c *Conn) Send(ctx context.Context, msgType websocket.MessageType, data []byte) error {
	return c.write(ctx, msgType, data)
}

// SendJSON marshals v and sends it as a text message (see Send).
func (c *Conn) SendJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wstest: marshal: %w", err)
	}
	return c.write(ctx, websocket.MessageText, b)
}

// Notify sends a JSON-RPC 2.0 notification
// {"jsonrpc":"2.0","method":method,"params":params} (see Send).
func (c *Conn) Notify(ctx context.Context, method string, params any) error {
	b, err := encodeNotification(method, params)
	if err != nil {
		return err
	}
	return c.write(ctx, websocket.MessageText, b)
}

// Disconnect closes the connection with a close frame carrying code and
// reason (code must be valid on the wire, e.g. 1000-1003, 1007-1014 or
// 3000-4999). The close handshake is given about a second; then the TCP
// connection is closed in any case. A stalled connection is resumed first so
// that the handshake can complete. Disconnect returns nil if the client
// completed the handshake. It does not wait for Done.
func (c *Conn) Disconnect(code websocket.StatusCode, reason string) error {
	c.setCloseReason(code, reason)
	c.Resume()
	errc := make(chan error, 1)
	go func() { errc <- c.ws.Close(code, reason) }()
	t := time.NewTimer(closeHandshakeTimeout)
	defer t.Stop()
	var err error
	select {
	case err = <-errc:
	case <-t.C:
		_ = c.gate.Close()
		<-errc
		err = errors.New("wstest: close handshake timed out")
	}
	_ = c.gate.Close()
	return err
}

// Drop closes the TCP connection abruptly: no WebSocket close frame (and, for
// TLS, no close_notify) is sent. It does not wait for Done.
func (c *Conn) Drop() {
	c.setCloseReason(-1, "")
	_ = c.gate.Close()
}

// Stall simulates a half-open connection: the server stops reading from the
// connection (so it neither answers pings nor replies to requests; bytes
// that arrive are held back, not lost) and sends nothing more (Send returns
// ErrStalled, Broadcast and Publish skip the connection, server pings and
// heartbeats pause). The TCP connection stays open. Close, Drop and
// Disconnect still work on a stalled connection.
func (c *Conn) Stall() {
	c.gate.pause()
	c.stalled.Store(true)
}

// Resume undoes Stall: sending resumes and held-back input is processed
// (and answered).
func (c *Conn) Resume() {
	// Allow writes before reopening the gate, so that replies to held-back
	// requests are not refused as stalled.
	c.stalled.Store(false)
	c.gate.resume()
}

// Stalled reports whether the connection is stalled.
func (c *Conn) Stalled() bool { return c.stalled.Load() }

// Received returns copies of every data message received on this connection
// so far, in order (including JSON-RPC requests).
func (c *Conn) Received() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyMessages(c.received)
}

// ReceivedCount is how many data messages this connection has received,
// including those past the capture limit (WithCaptureLimit).
func (c *Conn) ReceivedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.receivedCount
}

// WaitReceived waits until at least n data messages have been received and
// returns copies of all of them. It fails when ctx ends, or with
// ErrConnClosed when the connection ends first.
func (c *Conn) WaitReceived(ctx context.Context, n int) ([]Message, error) {
	var msgs []Message
	err := c.waitFor(ctx, func() bool {
		if len(c.received) >= n {
			msgs = copyMessages(c.received)
			return true
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("wstest: conn %d: waiting for %d messages (have %d): %w", c.id, n, len(c.Received()), err)
	}
	return msgs, nil
}

// WaitRequest waits until a JSON-RPC request (or notification) with the
// given method has been received and returns the first such message.
func (c *Conn) WaitRequest(ctx context.Context, method string) (Message, error) {
	var msg Message
	seen := 0
	err := c.waitFor(ctx, func() bool {
		for ; seen < len(c.received); seen++ {
			m := c.received[seen]
			if m.Type != websocket.MessageText {
				continue
			}
			if req, ok := parseRequest(m.Data); ok && req.method == method {
				msg = copyMessages(c.received[seen : seen+1])[0]
				return true
			}
		}
		return false
	})
	if err != nil {
		return Message{}, fmt.Errorf("wstest: conn %d: waiting for request %q: %w", c.id, method, err)
	}
	return msg, nil
}

func copyMessages(in []Message) []Message {
	out := make([]Message, len(in))
	for i, m := range in {
		out[i] = Message{Type: m.Type, Data: append([]byte(nil), m.Data...), At: m.At}
	}
	return out
}

// PingsSent returns how many WebSocket pings the server has sent (see
// WithServerPings).
func (c *Conn) PingsSent() int { return int(c.pingsSent.Load()) }

// PongsReceived returns how many WebSocket pongs the server has received.
func (c *Conn) PongsReceived() int { return int(c.pongsReceived.Load()) }

// PingsReceived returns how many WebSocket pings the client has sent (each
// is answered with a pong unless the connection is stalled).
func (c *Conn) PingsReceived() int { return int(c.pingsReceived.Load()) }

// HeartbeatsSent returns how many Deribit test_request heartbeats have been
// sent on this connection.
func (c *Conn) HeartbeatsSent() int { return int(c.heartbeatsSent.Load()) }

// TestResponses returns how many "public/test" requests have been received
// on this connection (the answers to test_request heartbeats).
func (c *Conn) TestResponses() int { return int(c.testRequests.Load()) }

// HeartbeatTimedOut reports whether the server closed this connection
// because a test_request heartbeat went unanswered.
func (c *Conn) HeartbeatTimedOut() bool { return c.hbTimedOut.Load() }

// Done returns a channel that is closed when the connection has ended and
// the server has released it (it is no longer in Server.Conns).
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseReason reports how the connection ended: the close code and reason
// the client sent, or the ones the server sent (Disconnect, heartbeat
// timeout), whichever came first. The code is -1 if the connection ended
// abruptly or has not ended yet.
func (c *Conn) CloseReason() (code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closeKnown {
		return -1, ""
	}
	return c.closeCode, c.closeReason
}

// Channels returns the connection's current Deribit subscription set,
// sorted.
func (c *Conn) Channels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.channels))
	for ch := range c.channels {
		out = append(out, ch)
	}
	sort.Strings(out)
	return out
}

// Subscribed reports whether the connection is subscribed to channel.
func (c *Conn) Subscribed(channel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.channels[channel]
	return ok
}

// WaitSubscribed waits until the connection is subscribed to every one of
// the channels.
func (c *Conn) WaitSubscribed(ctx context.Context, channels ...string) error {
	err := c.waitFor(ctx, func() bool {
		for _, ch := range channels {
			if _, ok := c.channels[ch]; !ok {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("wstest: conn %d: waiting for subscriptions %q: %w", c.id, channels, err)
	}
	return nil
}
