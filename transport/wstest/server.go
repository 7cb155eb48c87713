package wstest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// ErrServerClosed is returned by the waits of a Server once it has been
// closed and the awaited condition can no longer become true.
var ErrServerClosed = errors.New("wstest: server closed")

// Server is an in-process WebSocket server listening on a random port of
// 127.0.0.1. Create one with NewServer or NewTLSServer and always Close it.
// All methods are safe for concurrent use.
type Server struct {
	cfg  config
	ln   *trackingListener
	srv  *http.Server
	url  string
	addr string
	cert *x509.Certificate

	builtins map[string]Responder // immutable after construction

	hmu      sync.RWMutex
	handlers map[string]Responder
	answered map[string]func(*Conn) // AfterAnswer's test hooks

	mu            sync.Mutex
	conns         []*Conn // open, in accept order
	total         int
	nextID        int
	refuse        int
	refused       int
	hbTimeouts    int
	authCount     int
	orders        int
	rateLimited   int
	ordersByLabel map[string]int
	closed        bool
	changed       chan struct{} // closed and replaced on every state change
	client        *http.Client

	d        deribitState
	okxStats okxCounters

	stop      chan struct{}  // closed by Close
	wg        sync.WaitGroup // Serve, HTTP connections, WebSocket handlers, ticker
	closeOnce sync.Once
}

// deribitState is the server-wide state of the Deribit simulation; its maps
// are created on first use.
type deribitState struct {
	mu       sync.Mutex
	refresh  map[string]string // unused refresh token -> client_id
	nonces   map[nonceKey]struct{}
	accounts map[string]*account // rate limits by client_id
	seq      map[string]uint64   // ticker channel_seq by channel
	orders   *orderBook          // orders, trades, cancel-on-disconnect (deribit_orders.go)
}

// NewServer starts a WebSocket server on 127.0.0.1 with a random port and
// returns it. Any path is accepted. It panics if it cannot listen, like
// net/http/httptest.
func NewServer(opts ...Option) *Server {
	return newServer(false, opts)
}

// NewTLSServer is like NewServer but serves wss:// with a freshly generated
// self-signed certificate for 127.0.0.1, ::1 and localhost. Clients must
// trust it explicitly: see ClientTLSConfig, HTTPClient and DialOptions.
func NewTLSServer(opts ...Option) *Server {
	return newServer(true, opts)
}

func newServer(useTLS bool, opts []Option) *Server {
	cfg := newConfig(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("wstest: failed to listen on 127.0.0.1: %v", err))
	}
	s := &Server{
		cfg:      cfg,
		ln:       newTrackingListener(l),
		addr:     l.Addr().String(),
		builtins: builtinResponders(cfg),
		handlers: cfg.responders,
		changed:  make(chan struct{}),
		stop:     make(chan struct{}),
	}
	var ln net.Listener = s.ln
	scheme := "ws"
	if useTLS {
		cert, leaf, err := newSelfSignedCert()
		if err != nil {
			_ = l.Close()
			panic(fmt.Sprintf("wstest: %v", err))
		}
		s.cert = leaf
		ln = tls.NewListener(s.ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		})
		scheme = "wss"
	}
	s.url = scheme + "://" + s.addr + "/"
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ConnContext:       withNetConn,
		ConnState:         s.connState,
		ErrorLog:          log.New(io.Discard, "", 0),
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	if cfg.deribit && cfg.tickerInterval > 0 {
		s.wg.Add(1)
		go s.tickerLoop(cfg.tickerInterval)
	}
	return s
}

// URL returns the server's base URL, "ws://127.0.0.1:PORT/" or
// "wss://127.0.0.1:PORT/". Any path and query may be appended.
func (s *Server) URL() string { return s.url }

// Addr returns the listening address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Certificate returns the server's self-signed certificate, or nil if the
// server does not use TLS.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// ClientTLSConfig returns a new client tls.Config that trusts this server's
// certificate, or nil if the server does not use TLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.cert == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.cert)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// HTTPClient returns an http.Client suitable for dialing this server (it
// trusts the certificate of a TLS server). The same client is returned on
// every call; its idle connections are closed by Close.
func (s *Server) HTTPClient() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = &http.Client{Transport: &http.Transport{
			TLSClientConfig: s.ClientTLSConfig(),
			Proxy:           nil,
		}}
	}
	return s.client
}

// DialOptions returns websocket.DialOptions whose HTTPClient is
// HTTPClient(), ready to pass to websocket.Dial (also for wss:// servers).
func (s *Server) DialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{HTTPClient: s.HTTPClient()}
}

// Close shuts the server down: it closes the listener and every connection
// abruptly (no close frames), then waits until every goroutine the server
// started has ended, even for stalled connections. Close is idempotent and
// safe to call concurrently.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.mu.Lock()
		s.closed = true
		s.notifyLocked()
		s.mu.Unlock()

		_ = s.srv.Close()
		s.ln.closeAll()
		s.wg.Wait()

		s.mu.Lock()
		client := s.client
		s.mu.Unlock()
		if client != nil {
			client.CloseIdleConnections()
		}
	})
}

// Handle adds or replaces the JSON-RPC responder for method; a nil fn removes
// it (built-in responders of WithDeribit then apply again). It is safe to
// call while clients are connected.
func (s *Server) Handle(method string, fn Responder) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if fn == nil {
		delete(s.handlers, method)
		return
	}
	s.handlers[method] = fn
}

// AfterAnswer is a test hook: fn runs on a connection's read goroutine
// right after the server wrote its answer to a request of method on it,
// before it reads the connection's next message (and so before the first
// notification of a channel it just subscribed, unless fn sends one): the
// precise step at which to make a trade (FillOrder) during a client's
// reconnect. A nil fn removes the hook.
func (s *Server) AfterAnswer(method string, fn func(c *Conn)) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if fn == nil {
		delete(s.answered, method)
		return
	}
	if s.answered == nil {
		s.answered = map[string]func(*Conn){}
	}
	s.answered[method] = fn
}

func (s *Server) afterAnswer(method string) func(*Conn) {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.answered[method]
}

func (s *Server) responder(method string) Responder {
	s.hmu.RLock()
	fn := s.handlers[method]
	s.hmu.RUnlock()
	if fn == nil {
		fn = s.builtins[method]
	}
	return fn
}

// Conns returns the currently open connections in accept order.
//
// A connection is listed a moment after its handshake completes, and a
// client may see the handshake complete first: right after a client
// connects, wait with WaitConns or WaitTotalConns rather than reading
// Conns, ConnCount or TotalConns.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Conn(nil), s.conns...)
}

// Conn returns the open connection with the given ID, or nil.
func (s *Server) Conn(id int) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if c.id == id {
			return c
		}
	}
	return nil
}

// ConnCount returns the number of currently open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// TotalConns returns the number of WebSocket connections accepted since the
// server started (refused handshakes are not counted).
func (s *Server) TotalConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RefusedHandshakes returns how many upgrade requests were refused because
// of RefuseHandshakes.
func (s *Server) RefusedHandshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// HeartbeatTimeouts returns how many connections were closed because a
// Deribit test_request went unanswered.
func (s *Server) HeartbeatTimeouts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hbTimeouts
}

// WaitConns waits until at least n connections are open and returns the
// open connections. It fails when ctx ends or the server is closed first.
func (s *Server) WaitConns(ctx context.Context, n int) ([]*Conn, error) {
	var conns []*Conn
	err := s.waitFor(ctx, func() bool {
		if len(s.conns) >= n {
			conns = append([]*Conn(nil), s.conns...)
			return true
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("wstest: waiting for %d open connections (have %d): %w", n, s.ConnCount(), err)
	}
	return conns, nil
}

// WaitConnCount waits until exactly n connections are open, for example 0
// after DropAll or DisconnectAll.
func (s *Server) WaitConnCount(ctx context.Context, n int) error {
	err := s.waitFor(ctx, func() bool { return len(s.conns) == n })
	if err != nil {
		return fmt.Errorf("wstest: waiting for exactly %d open connections (have %d): %w", n, s.ConnCount(), err)
	}
	return nil
}

// WaitTotalConns waits until at least n connections have been accepted since
// the server started.
func (s *Server) WaitTotalConns(ctx context.Context, n int) error {
	err := s.waitFor(ctx, func() bool { return s.total >= n })
	if err != nil {
		return fmt.Errorf("wstest: waiting for %d accepted connections (have %d): %w", n, s.TotalConns(), err)
	}
	return nil
}

// waitFor waits until cond, evaluated with s.mu held, is true.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, closed, ch := cond(), s.closed, s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return ErrServerClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// DisconnectAll performs Conn.Disconnect on every open connection
// concurrently: each gets a close frame with code and reason, the close
// handshake is given about a second, then the connection is dropped.
// DisconnectAll returns when every handshake has finished or timed out; use
// WaitConnCount to wait until the server has forgotten the connections.
func (s *Server) DisconnectAll(code websocket.StatusCode, reason string) {
	var wg sync.WaitGroup
	for _, c := range s.Conns() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Disconnect(code, reason)
		}()
	}
	wg.Wait()
}

// DropAll closes every open TCP connection abruptly, without a close frame
// (see Conn.Drop).
func (s *Server) DropAll() {
	for _, c := range s.Conns() {
		c.Drop()
	}
}

// RefuseHandshakes makes every following upgrade request fail with the HTTP
// status (for example 401 or 503) and a short plain-text body; connections
// already open are not affected. Status 0 accepts handshakes again. It
// panics if status is neither 0 nor in the range 200-999.
func (s *Server) RefuseHandshakes(status int) {
	if status != 0 && (status < 200 || status > 999) {
		panic(fmt.Sprintf("wstest: RefuseHandshakes: invalid HTTP status %d", status))
	}
	s.mu.Lock()
	s.refuse = status
	s.mu.Unlock()
}

// Broadcast sends a message to every open connection that is not stalled,
// one after the other, each write bounded by the write timeout. It returns
// the joined errors of the failed writes.
func (s *Server) Broadcast(msgType websocket.MessageType, data []byte) error {
	var errs []error
	for _, c := range s.Conns() {
		if c.Stalled() {
			continue
		}
		if err := c.write(context.Background(), msgType, data); err != nil {
			errs = append(errs, fmt.Errorf("conn %d: %w", c.id, err))
		}
	}
	return errors.Join(errs...)
}

type netConnKey struct{}

func withNetConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, netConnKey{}, c)
}

func gateFromContext(ctx context.Context) *gateConn {
	c, _ := ctx.Value(netConnKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	g, _ := c.(*gateConn)
	return g
}

// connState keeps s.wg counting every HTTP connection goroutine, so that
// Close waits for them. Every connection starts in StateNew (reported by the
// Serve goroutine, which holds a count) and ends in exactly one of
// StateClosed or StateHijacked.
func (s *Server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.wg.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.wg.Done()
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed, refuse := s.closed, s.refuse
	if refuse != 0 && !closed {
		s.refused++
		s.notifyLocked()
	}
	s.mu.Unlock()
	switch {
	case closed:
		w.Header().Set("Connection", "close")
		http.Error(w, "wstest: server closed", http.StatusServiceUnavailable)
		return
	case refuse != 0:
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("wstest: handshake refused: %d %s", refuse, http.StatusText(refuse)), refuse)
		return
	}
	gate := gateFromContext(r.Context())
	if gate == nil {
		http.Error(w, "wstest: unknown connection", http.StatusInternalServerError)
		return
	}

	if !looksLikeUpgrade(r) {
		// Let Accept write the appropriate error response.
		_, _ = websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		return
	}

	// The HTTP connection's own count ends when it is hijacked by Accept;
	// this one covers the WebSocket connection's lifetime.
	s.wg.Add(1)
	defer s.wg.Done()

	// The ID is taken before the 101 response is written, so that clients
	// that dial one after the other get increasing IDs.
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()

	c := newConn(s, r, gate)
	c.id = id
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       s.cfg.subprotocols,
		InsecureSkipVerify: true,
		OnPingReceived:     c.onPing,
		OnPongReceived:     c.onPong,
	})
	if err != nil {
		return
	}
	c.run(ws)
}

// looksLikeUpgrade reports whether r is a well-formed WebSocket upgrade
// request, so that Accept is expected to succeed.
func looksLikeUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		r.ProtoAtLeast(1, 1) &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket") &&
		r.Header.Get("Sec-WebSocket-Version") == "13" &&
		len(r.Header.Values("Sec-WebSocket-Key")) == 1
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// register makes c visible, keeping s.conns sorted by ID. It fails once the
// server is closed.
func (s *Server) register(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.total++
	i := len(s.conns)
	for i > 0 && s.conns[i-1].id > c.id {
		i--
	}
	s.conns = slices.Insert(s.conns, i, c)
	s.notifyLocked()
	return true
}

func (s *Server) unregister(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.conns {
		if x == c {
			s.conns = slices.Delete(s.conns, i, i+1)
			break
		}
	}
	s.notifyLocked()
}

func (s *Server) noteHeartbeatTimeout() {
	s.mu.Lock()
	s.hbTimeouts++
	s.notifyLocked()
	s.mu.Unlock()
}
