package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

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
	)
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := opts.NetDial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := &countingConn{Conn: c}
			mu.Lock()
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

	c := &Conn{
		writeTimeout: opts.WriteTimeout,
		closeTimeout: opts.CloseTimeout,
		readLimit:    opts.ReadLimit,
		writeSlot:    make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	dialOpts := &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		HTTPHeader:   opts.Header,
		Subprotocols: opts.Subprotocols,
	}
	if opts.OnPingReceived != nil {
		onPing := opts.OnPingReceived
		dialOpts.OnPingReceived = func(_ context.Context, p []byte) bool { onPing(p); return true }
	}
	ws, resp, err := websocket.Dial(ctx, rawURL, dialOpts)
	if err != nil {
		return nil, &DialError{URL: redact.URL(rawURL), Err: dialCause(ctx, err, resp)}
	}
	mu.Lock()
	c.raw = raw
	mu.Unlock()
	if c.raw == nil {
		ws.CloseNow()
		return nil, &DialError{URL: redact.URL(rawURL), Err: errors.New("transport: the HTTP transport reused a connection it did not dial")}
	}
	ws.SetReadLimit(opts.ReadLimit)
	c.ws = ws
	return c, nil
}

// dialCause turns coder/websocket's dial error into a typed cause.
func dialCause(ctx context.Context, err error, resp *http.Response) error {
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		he := &HandshakeError{StatusCode: resp.StatusCode, Status: resp.Status}
		if resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			he.Body = strings.TrimSpace(string(b))
		}
		if he.Status == "" {
			he.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		return he
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	return err
}
