package transport

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/redact"
)

// ValidateURL checks that raw can be dialled: it parses, its scheme is ws or
// wss, and it has a host. The error wraps ErrBadURL.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q does not parse", ErrBadURL, redact.URL(raw))
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
	case "":
		return fmt.Errorf("%w: %q has no scheme (want ws:// or wss://)", ErrBadURL, redact.URL(raw))
	default:
		return fmt.Errorf("%w: scheme %q (want ws or wss)", ErrBadURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: %q has no host", ErrBadURL, redact.URL(raw))
	}
	return nil
}

// Dial opens a WebSocket connection to rawURL. ctx bounds the dial only; the
// returned connection does not depend on it. Errors are *DialError wrapping
// the cause: ErrBadURL, a *HandshakeError carrying the HTTP status, a TLS or
// network error, or the context's error. Use IsRecoverable to decide whether
// to try again.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	if err := ValidateURL(rawURL); err != nil {
		return nil, &DialError{URL: redact.URL(rawURL), Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.HandshakeTimeout)
	defer cancel()

	// Keep the TCP connection the HTTP transport opens: write deadlines are
	// set on it, and Close can cut it when a close handshake stalls.
	var (
		mu  sync.Mutex
		raw *countingConn
		in  *inspector
	)
	// HandshakeTimeout bounds the whole handshake, including what neither
	// net/http nor coder/websocket bound by ctx: after a failed 101 check
	// coder/websocket reads the body for up to 3 s.
	stopCut := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			_ = raw.Close()
		}
	})
	defer stopCut()
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := opts.NetDial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if c == nil { // net/http would crash on its own goroutine
				return nil, errNilNetConn
			}
			cc := &countingConn{Conn: c}
			mu.Lock()
			if raw != nil { // an earlier hop of a followed redirect
				_ = raw.Close()
			}
			raw = cc
			mu.Unlock()
			return cc, nil
		},
		TLSClientConfig:        opts.TLSConfig.Clone(),
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	// What the venue sends back (a refusal's body, a close reason, a
	// Location) may echo the request: its text is scrubbed of this
	// request's secrets before it is stored in an error. Built only when
	// an error needs it (a dial that succeeds and ends cleanly never does).
	scrub := (&requestScrubber{rawURL: rawURL, header: opts.Header, subprotocols: opts.Subprotocols, secrets: opts.Secrets}).get
	c := &Conn{
		scrub:        scrub,
		writeTimeout: opts.WriteTimeout,
		closeTimeout: opts.CloseTimeout,
		readLimit:    opts.ReadLimit,
		done:         make(chan struct{}),
	}
	rt := &upgradeTransport{base: tr, subprotocols: opts.Subprotocols, wrap: func(body io.ReadWriteCloser) io.ReadWriteCloser {
		mu.Lock()
		defer mu.Unlock()
		r := raw
		in = newInspector(body, func() { _ = r.SetReadDeadline(time.Now()) }, opts)
		return in
	}}
	dialOpts := &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: rt, CheckRedirect: opts.checkRedirect},
		HTTPHeader:   opts.Header,
		Subprotocols: opts.Subprotocols,
	}
	// Once the connection is closing no pong is written: coder/websocket
	// refuses any frame after its close frame, and a failed pong ended its
	// close handshake at once, cutting a peer that was still reading what
	// we had sent (found under a ping flood, review14).
	onPing := opts.OnPingReceived
	dialOpts.OnPingReceived = func(_ context.Context, p []byte) bool {
		if onPing != nil {
			onPing(p)
		}
		return !c.closed.Load()
	}
	ws, resp, err := websocket.Dial(ctx, rawURL, dialOpts)
	if err != nil {
		return nil, &DialError{URL: redact.URL(rawURL), Err: dialCause(ctx, err, resp, scrub())}
	}
	if !stopCut() {
		ws.CloseNow()
		return nil, &DialError{URL: redact.URL(rawURL), Err: fmt.Errorf("transport: handshake: %w", context.Cause(ctx))}
	}
	mu.Lock()
	c.raw = raw
	insp := in
	mu.Unlock()
	if c.raw == nil || insp == nil {
		ws.CloseNow()
		return nil, &DialError{URL: redact.URL(rawURL), Err: errors.New("transport: the HTTP transport reused a connection it did not dial")}
	}
	ws.SetReadLimit(opts.ReadLimit)
	c.ws, c.out, c.tls = ws, &insp.out, resp.TLS != nil
	c.out.mu.Lock()
	c.out.timeout, c.out.setDL = opts.WriteTimeout, c.raw.SetWriteDeadline
	c.out.mu.Unlock()
	return c, nil
}

// requestScrubber builds the scrubber of a request's secrets on first use
// (get). The connection keeps it: it holds the request's parts, not its
// Options, and is one allocation (sync.OnceValue and a closure were two,
// half as large again).
type requestScrubber struct {
	once                  sync.Once
	s                     *redact.Scrubber
	rawURL                string
	header                http.Header
	subprotocols, secrets []string
}

func (r *requestScrubber) get() *redact.Scrubber {
	r.once.Do(func() { r.s = redact.ForRequest(r.rawURL, r.header, r.subprotocols, r.secrets...) })
	return r.s
}

// upgradeTransport checks a 101 answer before coder/websocket sees it and
// puts the frame inspector on the connection's plaintext stream (the body
// of the 101 response, above TLS).
type upgradeTransport struct {
	base         *http.Transport
	subprotocols []string
	wrap         func(io.ReadWriteCloser) io.ReadWriteCloser
}

func (t *upgradeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, err
	}
	// A 101 that coder/websocket would refuse: fail now. It would check
	// too, then wait up to 3 s reading the body of a connection it gives up.
	if problem := t.upgradeProblem(req, resp); problem != "" {
		_ = resp.Body.Close()
		return nil, &HandshakeError{StatusCode: resp.StatusCode, Status: resp.Status, Problem: problem}
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("transport: the HTTP transport's 101 body is a %T, not an io.ReadWriteCloser", resp.Body)
	}
	resp.Body = t.wrap(rwc)
	return resp, nil
}

// upgradeProblem says what is wrong with a 101, or "".
func (t *upgradeTransport) upgradeProblem(req *http.Request, resp *http.Response) string {
	if resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(req.Header.Get("Sec-WebSocket-Key")) {
		return "the server's Sec-WebSocket-Accept does not match the key sent (not a WebSocket server)"
	}
	if !hasToken(resp.Header, "Connection", "Upgrade") {
		return "the server's Connection header does not say Upgrade"
	}
	if !hasToken(resp.Header, "Upgrade", "websocket") {
		return "the server upgraded to a protocol other than websocket"
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return "the server chose an extension that was not offered"
	}
	if proto := resp.Header.Get("Sec-WebSocket-Protocol"); proto != "" && !slices.ContainsFunc(t.subprotocols, func(p string) bool { return strings.EqualFold(p, proto) }) {
		return "the server chose a subprotocol that was not offered"
	}
	return ""
}

// hasToken reports whether one of h's name headers lists token (comma
// separated, any case), as RFC 6455 4.1 asks of Connection and Upgrade.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		if slices.ContainsFunc(strings.Split(v, ","), func(p string) bool { return strings.EqualFold(strings.TrimSpace(p), token) }) {
			return true
		}
	}
	return false
}

// acceptKey is the Sec-WebSocket-Accept for key (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dialCause turns coder/websocket's dial error into a typed cause whose
// text holds no secret: net/http's *url.Error renders the request URL
// (query, user name) and coder/websocket's wrappers copy that text, so the
// chain is rebuilt from the *url.Error down, with the URL redacted.
func dialCause(ctx context.Context, err error, resp *http.Response, scrub *redact.Scrubber) error {
	var re *RedirectError
	if errors.As(err, &re) {
		re.Location = scrub.String(re.Location)
		return re
	}
	var he *HandshakeError
	if errors.As(err, &he) { // a 101 that is no WebSocket handshake
		he.Status, he.Body = scrub.Text(he.Status), scrub.Text(he.Body)
		return he
	}
	if resp != nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// A 3xx that net/http did not treat as a redirect (no Location, 300,
		// 304): still not followed.
		re := &RedirectError{StatusCode: resp.StatusCode, Reason: "redirects are not followed"}
		if loc := resp.Header.Get("Location"); loc != "" {
			re.Location = scrub.String(redact.URL(loc))
		}
		return re
	}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		he := &HandshakeError{StatusCode: resp.StatusCode, Status: scrub.Text(resp.Status)}
		if resp.Body != nil {
			// Scrubbed before it is cut: a cut inside an echoed secret would
			// leave its first bytes, which no longer match it.
			b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyScrubWindow))
			he.Body = truncateUTF8(scrub.Text(strings.TrimSpace(string(b))), bodyKept)
		}
		if he.Status == "" {
			he.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		return he
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		safe := *ue
		safe.URL = redact.URL(ue.URL)
		err = fmt.Errorf("handshake request: %w", &safe)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	return err
}

// A refusal's body is read up to bodyScrubWindow bytes, scrubbed, and kept
// up to bodyKept bytes in HandshakeError.Body.
const (
	bodyScrubWindow = 4 << 10
	bodyKept        = 256
)

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// errNilNetConn: a NetDial function broke its contract.
var errNilNetConn = errors.New("transport: Options.NetDial returned neither a connection nor an error")
