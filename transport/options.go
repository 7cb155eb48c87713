package transport

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Defaults used where an Options field is zero.
const (
	// DefaultHandshakeTimeout bounds TCP connect, TLS and the upgrade.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultReadLimit is the largest message Read accepts: 16 MiB. A full
	// order-book snapshot on an exchange is usually well under 1 MiB, so this
	// leaves room for deep books and large batches while still bounding the
	// memory one hostile or broken message can take. coder/websocket's own
	// default (32 KiB) is too small for snapshots.
	DefaultReadLimit = 16 << 20
	// DefaultWriteTimeout bounds each write; a peer that takes longer to
	// accept a message is considered stalled and the connection is closed.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultCloseTimeout bounds the close handshake.
	DefaultCloseTimeout = 2 * time.Second
	// DefaultMessageTimeout bounds how long a message (or a control frame)
	// may take from its first byte to its last: 30 s. A frame header
	// followed by silence, a message whose final frame never comes, or a
	// stall mid-frame fails the connection with a *ProtocolError (close
	// 1008) once it has been incomplete this long, heartbeat or not. 30 s
	// moves a 16 MiB message at 4.5 Mbit/s.
	DefaultMessageTimeout = 30 * time.Second
	// DefaultMaxFragments bounds the frames of one message: 4096, enough for
	// a DefaultReadLimit message cut into 4 KiB fragments. A stream of
	// (empty) continuation frames that never ends a message fails the
	// connection with a *ProtocolError (close 1008) at the next frame.
	DefaultMaxFragments = 4096
	// MaxFollowRedirects is the most redirects Options.FollowRedirects may
	// allow.
	MaxFollowRedirects = 10
)

// Options configure Dial. The zero value is usable: every zero field takes
// its default.
type Options struct {
	// Header is sent with the upgrade request (API keys, cookies). Values
	// never appear in errors or logs.
	Header http.Header
	// HandshakeTimeout bounds TCP connect, TLS and the upgrade together.
	// Default DefaultHandshakeTimeout. The dial context can only shorten it.
	HandshakeTimeout time.Duration
	// Subprotocols are offered in Sec-WebSocket-Protocol. A redirect to
	// another origin (FollowRedirects, RedirectHosts) does not carry them:
	// some schemes put a bearer token in a subprotocol.
	Subprotocols []string
	// Secrets are further values (beside Header's values and the URL's
	// user info, secret query values and secret path segments, which are
	// always hidden) that never appear in the text of an error this package
	// returns, even where the venue echoes them (a refusal's body, a close
	// reason, a redirect's Location).
	Secrets []string
	// TLSConfig is used for wss URLs. nil means the system roots with full
	// certificate verification. Verification is only skipped if you set
	// InsecureSkipVerify yourself.
	TLSConfig *tls.Config
	// ReadLimit is the largest message accepted, in bytes. Default
	// DefaultReadLimit. A longer message fails Read with *MessageTooBigError
	// and closes the connection with 1009.
	ReadLimit int64
	// WriteTimeout bounds each write: a message (or a control frame) the
	// peer does not take within it fails the connection, from 0.9 times it
	// on (the deadline is renewed only when less than nine tenths of it is
	// left, so that a stream of writes does not update it per message).
	// Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// CloseTimeout bounds Close's handshake. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// OnPingReceived, if set, is called from the reader goroutine for every
	// ping the peer sends, before the pong (which is always sent). Keep it
	// quick: the reader waits for it.
	OnPingReceived func(payload []byte)
	// NetDial, if set, opens the TCP connection (for custom resolvers or
	// socket options). Default: a net.Dialer with 15 s keep-alive.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// FollowRedirects is how many 3xx answers to the handshake may be
	// followed. Default 0: a redirect fails Dial with a *RedirectError
	// naming the status and the (redacted) Location. Values above
	// MaxFollowRedirects count as MaxFollowRedirects. A followed redirect
	// never goes from wss to ws and stays on the URL's origin (scheme, host
	// and port) unless its host is in RedirectHosts.
	FollowRedirects int
	// RedirectHosts are the host names (or host:port) a followed redirect
	// may lead to besides the URL's own origin. Credentials never go along
	// to another origin: Header (every user header), Authorization, Cookie
	// and Referer are removed from a request to any origin but the URL's.
	RedirectHosts []string
	// MessageTimeout bounds a message from its first byte to its last.
	// Default DefaultMessageTimeout. It fails the connection only while Read
	// waits for the peer: bytes waiting in the socket for a busy reader do
	// not count as a stall.
	MessageTimeout time.Duration
	// MaxFragments bounds the frames of one message. Default
	// DefaultMaxFragments.
	MaxFragments int
}

func (o Options) withDefaults() Options {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = DefaultMessageTimeout
	}
	if o.MaxFragments <= 0 {
		o.MaxFragments = DefaultMaxFragments
	}
	o.FollowRedirects = min(max(o.FollowRedirects, 0), MaxFollowRedirects)
	if o.NetDial == nil {
		o.NetDial = defaultNetDial
	}
	return o
}

// defaultNetDial is Options.NetDial's default, one for every dial (a
// net.Dialer is safe for concurrent use; each connection would keep its own).
var defaultNetDial = (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext
