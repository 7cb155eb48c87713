package transport_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

const secret = "S3CRETVALUE"

func dialErr(t *testing.T, url string, opts transport.Options) error {
	t.Helper()
	c, err := transport.Dial(ctxT(t, 5*time.Second), url, opts)
	if err == nil {
		_ = c.CloseNow()
		t.Fatalf("Dial(%s) succeeded", url)
	}
	return err
}

// noSecret fails if the secret shows in any rendering of err.
func noSecret(t *testing.T, err error) {
	t.Helper()
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		if s := fmt.Sprintf(f, err); strings.Contains(s, secret) {
			t.Fatalf("%s of the error leaks the secret: %s", f, s)
		}
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), secret) {
			t.Fatalf("a wrapped cause (%T) leaks the secret: %v", e, e)
		}
	}
}

// redirecting answers every upgrade request with status and location.
func redirecting(t *testing.T, status int, location func() string) *hostile.Server {
	return hostile.NewServer(t, func(c *hostile.Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		_ = c.Respond(status, "Location: "+location())
	})
}

func accepting(t *testing.T) *hostile.Server {
	return hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() == nil {
			c.Hold()
		}
	})
}

func loopback2(t *testing.T, script hostile.Script) *hostile.Server {
	s, err := hostile.Listen("127.0.0.2:0", script)
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestRedirectsAreNotFollowedByDefault(t *testing.T) {
	other := loopback2(t, func(c *hostile.Conn) {
		if c.Handshake() == nil {
			c.Hold()
		}
	})
	otherPort := accepting(t)
	for _, status := range []int{301, 302, 307, 308} {
		for name, target := range map[string]*hostile.Server{"another host": other, "another port": otherPort} {
			srv := redirecting(t, status, func() string { return target.URL() + "x?token=" + secret })
			err := dialErr(t, srv.URL(), transport.Options{Header: http.Header{"Authorization": {"Bearer " + secret}}})
			var re *transport.RedirectError
			if !errors.As(err, &re) || re.StatusCode != status || !strings.HasPrefix(re.Location, target.URL()+"x?token=") {
				t.Fatalf("%d to %s: Dial = %v, want a *RedirectError %d with the redacted Location", status, name, err, status)
			}
			var he *transport.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != status {
				t.Fatalf("%d: a RedirectError must unwrap to a *HandshakeError with the status: %v", status, err)
			}
			if transport.IsRecoverable(err) {
				t.Fatalf("%d: a redirect reported recoverable", status)
			}
			noSecret(t, err)
		}
	}
	if n := other.Accepted() + otherPort.Accepted(); n != 0 {
		t.Fatalf("the redirect targets got %d connections, want 0", n)
	}
}

func TestRedirectLoopMakesOneRequest(t *testing.T) {
	var srv *hostile.Server
	srv = hostile.NewServer(t, func(c *hostile.Conn) {
		for {
			if _, err := c.ReadRequest(); err != nil {
				return
			}
			if c.Respond(302, "Location: "+srv.URL()+"again") != nil {
				return
			}
		}
	})
	err := dialErr(t, srv.URL(), transport.Options{})
	var re *transport.RedirectError
	if !errors.As(err, &re) {
		t.Fatalf("Dial = %v, want *RedirectError", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("the loop got %d requests, want 1", n)
	}
	err = dialErr(t, srv.URL(), transport.Options{FollowRedirects: 3})
	if !errors.As(err, &re) || re.Followed != 3 {
		t.Fatalf("Dial with FollowRedirects 3 = %v, want a *RedirectError after 3 followed", err)
	}
	if n := len(srv.Requests()); n != 1+4 {
		t.Fatalf("FollowRedirects 3 made %d requests, want 4", n-1)
	}
}

func TestFollowedRedirectStaysOnTheOriginWithCredentials(t *testing.T) {
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		if req.URL.Path == "/old" {
			_ = c.Respond(307, "Location: /new")
			return
		}
		if c.Respond101(c.AcceptKey()) == nil {
			c.Hold()
		}
	})
	hdr := http.Header{"Authorization": {"Bearer k"}, "X-Api-Key": {"k"}}
	dial(t, srv.URL()+"old?listenKey=1", transport.Options{FollowRedirects: 1, Header: hdr})
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].URL.Path != "/new" {
		t.Fatalf("requests %v, want /old then /new", reqs)
	}
	if reqs[1].Header.Get("X-Api-Key") != "k" || reqs[1].Header.Get("Authorization") != "Bearer k" {
		t.Fatalf("same-origin redirect lost the credentials: %v", reqs[1].Header)
	}
	if reqs[1].Header.Get("Referer") != "" {
		t.Fatalf("Referer sent: %q", reqs[1].Header.Get("Referer"))
	}
}

func TestFollowedRedirectNeverCarriesCredentialsToAnotherOrigin(t *testing.T) {
	target := accepting(t)
	srv := redirecting(t, 302, func() string { return target.URL() })
	hdr := http.Header{"Authorization": {"Bearer " + secret}, "X-Api-Key": {secret}, "Cookie": {"s=" + secret}}
	// Another port is another origin: refused unless allowed.
	err := dialErr(t, srv.URL(), transport.Options{FollowRedirects: 5, Header: hdr})
	var re *transport.RedirectError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "origin") {
		t.Fatalf("cross-origin redirect = %v, want a *RedirectError about the origin", err)
	}
	if target.Accepted() != 0 {
		t.Fatal("the other origin was dialled")
	}
	// Allowed: followed, without a single credential.
	// A subprotocol can carry a token too (a bearer scheme): it stays home.
	token := "bearer.tok3n" + strings.Repeat("x9", 12)
	dial(t, srv.URL(), transport.Options{FollowRedirects: 5, Header: hdr, RedirectHosts: []string{"127.0.0.1"}, Subprotocols: []string{token}})
	reqs := target.Requests()
	if len(reqs) != 1 {
		t.Fatalf("target got %d requests", len(reqs))
	}
	for k, v := range reqs[0].Header {
		if strings.Contains(strings.Join(v, ","), secret) || strings.Contains(strings.Join(v, ","), token) {
			t.Fatalf("header %s carried a credential to another origin", k)
		}
	}
}

// What a venue echoes in a refusal (status text, body) is scrubbed of the
// request's secrets before it is cut to HandshakeError's 256 bytes, so no
// prefix of a secret survives the cut either; Options.Secrets names more.
func TestRefusalEchoesCarryNoSecrets(t *testing.T) {
	long := "L0ngS3cretValue" + strings.Repeat("k7", 25) // 65 bytes
	extra := "0nlyInOptionsSecrets"
	cases := map[string]string{
		"echo of a header value":           "rate limited key " + secret,
		"echo of an Options.Secrets":       "unknown account " + extra,
		"a secret across the 256 cut":      strings.Repeat("-", 240) + long,
		"a query secret in the status":     "",
		"a query secret in a 101's status": "101",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			srv := hostile.NewServer(t, func(c *hostile.Conn) {
				if _, err := c.ReadRequest(); err != nil {
					return
				}
				status := "503 Service Unavailable"
				switch body {
				case "":
					status = "503 no such key " + long
				case "101": // a bad accept key, and the key echoed
					_ = c.WriteRaw([]byte("HTTP/1.1 101 Switching " + long + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n"))
					return
				}
				_ = c.WriteRaw([]byte(fmt.Sprintf("HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(body), body)))
			})
			err := dialErr(t, srv.URL()+"?listenKey="+long, transport.Options{
				Header: http.Header{"X-Mbx-Apikey": {secret}}, Secrets: []string{extra}})
			var he *transport.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != 503 && he.StatusCode != 101 {
				t.Fatalf("got %v, want a 503 or 101 *HandshakeError", err)
			}
			noSecret(t, err)
			for _, s := range []string{long[:12], extra} {
				if txt := fmt.Sprintf("%v %#v", err, he); strings.Contains(txt, s) {
					t.Fatalf("the refusal shows %q: %s", s, txt)
				}
			}
		})
	}
}

func TestRedirectNeverDowngradesWSS(t *testing.T) {
	plain := accepting(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL()+"?k="+secret, http.StatusFound)
	}))
	defer tlsSrv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	opts := transport.Options{FollowRedirects: 5, RedirectHosts: []string{"127.0.0.1"}, TLSConfig: tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig}
	err := dialErr(t, "wss"+strings.TrimPrefix(tlsSrv.URL, "https"), opts)
	var re *transport.RedirectError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "downgrade") {
		t.Fatalf("wss->ws redirect = %v, want a *RedirectError about the downgrade", err)
	}
	if plain.Accepted() != 0 {
		t.Fatal("the plain ws server was dialled")
	}
	noSecret(t, err)
}

// Every error Dial returns renders the URL redacted, whatever failed, and
// still matches its cause.
func TestDialErrorsCarryNoSecrets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	silent := hostile.NewServer(t, func(c *hostile.Conn) { c.Hold() })
	tlsSrv := wstest.NewTLSServer()
	defer tlsSrv.Close()
	tlsHost := strings.TrimPrefix(tlsSrv.URL(), "wss://")
	badAccept := hostile.NewServer(t, func(c *hostile.Conn) {
		if _, err := c.ReadRequest(); err == nil && c.Respond101("bogus") == nil {
			c.Hold()
		}
	})
	path := "/ws?listenKey=" + secret + "&signature=" + secret
	user := "ws://" + secret + ":" + secret + "@"
	cases := []struct {
		name  string
		url   string
		opts  transport.Options
		check func(error) bool
	}{
		{"refused", "ws://" + refused + path, transport.Options{}, func(err error) bool {
			var op *net.OpError
			return errors.As(err, &op) && errors.Is(err, syscallECONNREFUSED()) && transport.IsRecoverable(err)
		}},
		{"refused, user info", user + refused + path, transport.Options{}, func(err error) bool { return errors.Is(err, syscallECONNREFUSED()) }},
		{"handshake timeout", silent.URL() + path[1:], transport.Options{HandshakeTimeout: 200 * time.Millisecond}, func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded) && transport.IsRecoverable(err)
		}},
		{"handshake timeout, user info", user + silent.Addr() + path, transport.Options{HandshakeTimeout: 200 * time.Millisecond}, func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded)
		}},
		{"bad certificate", "wss://" + tlsHost + path[1:], transport.Options{}, func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua) && !transport.IsRecoverable(err)
		}},
		{"bad certificate, user info", "wss://" + secret + "@" + tlsHost + path, transport.Options{}, func(err error) bool {
			return !transport.IsRecoverable(err)
		}},
		{"no such host", "ws://no-such-host.zenws.test" + path, transport.Options{NetDial: testutil.NXDomainDialer(t)}, func(err error) bool {
			var dns *net.DNSError
			return errors.As(err, &dns) && dns.IsNotFound && !transport.IsRecoverable(err)
		}},
		{"bad accept key", badAccept.URL() + path[1:], transport.Options{}, func(err error) bool {
			var he *transport.HandshakeError
			return errors.As(err, &he) && he.StatusCode == 101 && !transport.IsRecoverable(err)
		}},
	}
	for _, c := range cases {
		err := dialErr(t, c.url, c.opts)
		noSecret(t, err)
		if !c.check(err) {
			t.Errorf("%s: %v does not match its cause or its recoverability", c.name, err)
		}
		var de *transport.DialError
		if !errors.As(err, &de) {
			t.Errorf("%s: %T, want *DialError", c.name, err)
		}
	}
}

// A 101 that is not a WebSocket handshake, or one that never ends, fails
// within HandshakeTimeout: it used to take 3 s whatever the timeout.
func TestHandshakeTimeoutBoundsTheWholeHandshake(t *testing.T) {
	scripts := map[string]hostile.Script{
		"101 with a bad accept key, then silence": func(c *hostile.Conn) {
			if _, err := c.ReadRequest(); err == nil && c.Respond101("bogus") == nil {
				c.Hold()
			}
		},
		"101 upgrading to another protocol, then silence": func(c *hostile.Conn) {
			if _, err := c.ReadRequest(); err == nil && c.WriteRaw([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+c.AcceptKey()+"\r\n\r\n")) == nil {
				c.Hold()
			}
		},
		"101 without Connection: Upgrade, then silence": func(c *hostile.Conn) {
			if _, err := c.ReadRequest(); err == nil && c.WriteRaw([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: "+c.AcceptKey()+"\r\n\r\n")) == nil {
				c.Hold()
			}
		},
		"101 with an extension never offered, then silence": func(c *hostile.Conn) {
			if _, err := c.ReadRequest(); err == nil && c.Respond101(c.AcceptKey(), "Sec-WebSocket-Extensions: x-hostile") == nil {
				c.Hold()
			}
		},
		"101 status line, then silence": func(c *hostile.Conn) {
			if _, err := c.ReadRequest(); err == nil && c.WriteRaw([]byte("HTTP/1.1 101 Switching Protocols\r\n")) == nil {
				c.Hold()
			}
		},
		"503 without a length, then silence": func(c *hostile.Conn) {
			if _, err := c.ReadRequest(); err == nil && c.WriteRaw([]byte("HTTP/1.1 503 Service Unavailable\r\n\r\n")) == nil {
				c.Hold()
			}
		},
	}
	for name, script := range scripts {
		srv := hostile.NewServer(t, script)
		start := time.Now()
		err := dialErr(t, srv.URL(), transport.Options{HandshakeTimeout: 300 * time.Millisecond})
		if took := time.Since(start); took > 2500*time.Millisecond {
			t.Errorf("%s: Dial took %v with a 300ms handshake timeout", name, took)
		}
		// A whole 101 that is no WebSocket handshake is named as such.
		var he *transport.HandshakeError
		if strings.HasPrefix(name, "101 ") && name != "101 status line, then silence" && (!errors.As(err, &he) || he.StatusCode != 101 || he.Problem == "") {
			t.Errorf("%s: got %v, want a *HandshakeError 101 naming the problem", name, err)
		}
	}
}

// handshaken dials a hostile server that completes the handshake and then
// runs script, and returns the connection and a channel with the close
// frame the server got.
func handshaken(t *testing.T, opts transport.Options, script func(c *hostile.Conn)) (*transport.Conn, chan hostile.ReadFrame) {
	return handshakenOver(t, hostile.NewServer, opts, script)
}

// handshakenOver is handshaken on a server made by newServer
// (hostile.NewServer or hostile.NewTLSServer).
func handshakenOver(t *testing.T, newServer func(testing.TB, hostile.Script) *hostile.Server, opts transport.Options, script func(c *hostile.Conn)) (*transport.Conn, chan hostile.ReadFrame) {
	t.Helper()
	closes := make(chan hostile.ReadFrame, 1)
	srv := newServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		go func() {
			f, _ := c.ReadUntilClose()
			closes <- f
		}()
		script(c)
		<-c.Done()
	})
	if opts.TLSConfig == nil {
		opts.TLSConfig = srv.ClientTLSConfig()
	}
	return dial(t, srv.URL(), opts), closes
}

func readProtocolError(t *testing.T, c *transport.Conn, within time.Duration) *transport.ProtocolError {
	t.Helper()
	res := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(); err != nil {
				res <- err
				return
			}
		}
	}()
	select {
	case err := <-res:
		var pe *transport.ProtocolError
		if !errors.As(err, &pe) || !errors.Is(err, transport.ErrProtocol) {
			t.Fatalf("Read = %v, want a *ProtocolError", err)
		}
		if !transport.IsRecoverable(err) {
			t.Fatal("a protocol error must be recoverable")
		}
		if !errors.Is(c.Err(), transport.ErrProtocol) {
			t.Fatalf("Err() = %v", c.Err())
		}
		return pe
	case <-time.After(within):
		_ = c.CloseNow()
		<-res
		t.Fatalf("Read still blocked after %v", within)
		return nil
	}
}

func wantClose(t *testing.T, closes chan hostile.ReadFrame, code websocket.StatusCode) {
	t.Helper()
	select {
	case f := <-closes:
		if websocket.StatusCode(f.CloseCode()) != code {
			t.Fatalf("server got close %d, want %d", f.CloseCode(), code)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("server got no close frame")
	}
}

func TestMaskedServerFrameFailsWith1002(t *testing.T) {
	for _, op := range []byte{hostile.OpBinary, hostile.OpText, hostile.OpPing} {
		c, closes := handshaken(t, transport.Options{}, func(c *hostile.Conn) {
			_ = c.WriteFrame(true, hostile.OpText, false, []byte("fine"))
			_ = c.WriteFrame(true, op, true, []byte("masked payload"))
		})
		if _, data, err := c.Read(); err != nil || string(data) != "fine" {
			t.Fatalf("first message = %q, %v", data, err)
		}
		pe := readProtocolError(t, c, 5*time.Second)
		if pe.Code != websocket.StatusProtocolError {
			t.Fatalf("code %d, want 1002", pe.Code)
		}
		wantClose(t, closes, websocket.StatusProtocolError)
	}
}

func TestHugeLengthHeaderFailsWith1002(t *testing.T) {
	c, closes := handshaken(t, transport.Options{}, func(c *hostile.Conn) {
		_ = c.WriteRaw(hostile.FrameHeader(true, hostile.OpBinary, false, 1<<63))
	})
	if pe := readProtocolError(t, c, 5*time.Second); pe.Code != websocket.StatusProtocolError {
		t.Fatalf("code %d, want 1002", pe.Code)
	}
	wantClose(t, closes, websocket.StatusProtocolError)
}

// A header announcing more than the read limit (in one frame, or summed
// over a message's fragments) fails at once with 1009, without waiting for
// payload a stalled peer never sends (before: connected until the message
// timeout).
func TestOverLimitHeaderFailsAtOnce(t *testing.T) {
	for name, script := range map[string]func(c *hostile.Conn){
		"one frame of 1 TiB": func(c *hostile.Conn) {
			_ = c.WriteRaw(append(hostile.FrameHeader(true, hostile.OpBinary, false, 1<<40), 1, 2, 3))
		},
		"fragments summing past the limit": func(c *hostile.Conn) {
			_ = c.WriteFrame(false, hostile.OpBinary, false, make([]byte, 600))
			_ = c.WriteRaw(hostile.FrameHeader(true, hostile.OpContinuation, false, 600))
		},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			c, closes := handshaken(t, transport.Options{ReadLimit: 1024}, script)
			done := make(chan error, 1)
			go func() { _, _, err := c.Read(); done <- err }()
			select {
			case err := <-done:
				var tb *transport.MessageTooBigError
				if !errors.As(err, &tb) || tb.Limit != 1024 {
					t.Fatalf("Read = %v, want *MessageTooBigError{1024}", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Read still waiting after 5 s")
			}
			wantClose(t, closes, websocket.StatusMessageTooBig)
			t.Logf("failed after %v", time.Since(start))
		})
	}
}

// A NetDial that returns neither a connection nor an error is a dial error,
// not a crash on net/http's goroutine (before: SIGSEGV, exit 2).
func TestNilNetConnIsADialError(t *testing.T) {
	srv := hostile.NewServer(t, func(c *hostile.Conn) { _ = c.Handshake() })
	err := dialErr(t, srv.URL(), transport.Options{NetDial: func(context.Context, string, string) (net.Conn, error) { return nil, nil }})
	if !strings.Contains(err.Error(), "neither a connection nor an error") {
		t.Fatalf("got %v", err)
	}
}

// A message that never completes fails the connection within
// MessageTimeout (or MaxFragments frames), heartbeat or not.
func TestIncompleteMessagesAreBounded(t *testing.T) {
	var flooded atomic.Int64
	cases := map[string]func(c *hostile.Conn){
		"a frame header, then silence": func(c *hostile.Conn) {
			_ = c.WriteRaw(hostile.FrameHeader(true, hostile.OpText, false, 100))
		},
		"half a frame header, then silence": func(c *hostile.Conn) {
			_ = c.WriteRaw(hostile.FrameHeader(true, hostile.OpText, false, 1000)[:3])
		},
		"half a payload, then silence": func(c *hostile.Conn) {
			_ = c.WriteRaw(hostile.Frame(true, hostile.OpText, false, []byte("0123456789"))[:7])
		},
		"a first fragment, then silence": func(c *hostile.Conn) {
			_ = c.WriteFrame(false, hostile.OpText, false, []byte("part"))
		},
		"a first fragment, then pings forever": func(c *hostile.Conn) {
			_ = c.WriteFrame(false, hostile.OpText, false, []byte("part"))
			for c.Sleep(20 * time.Millisecond) {
				if c.WriteFrame(true, hostile.OpPing, false, nil) != nil {
					return
				}
			}
		},
		"a slow drip of empty continuations": func(c *hostile.Conn) {
			_ = c.WriteFrame(false, hostile.OpText, false, nil)
			for c.Sleep(10 * time.Millisecond) {
				if c.WriteFrame(false, hostile.OpContinuation, false, nil) != nil {
					return
				}
			}
		},
	}
	for name, script := range cases {
		start := time.Now()
		c, closes := handshaken(t, transport.Options{MessageTimeout: 300 * time.Millisecond}, script)
		pe := readProtocolError(t, c, 5*time.Second)
		if pe.Code != websocket.StatusPolicyViolation || !strings.Contains(pe.Reason, "MessageTimeout") {
			t.Fatalf("%s: %v, want the message timeout", name, pe)
		}
		t.Logf("%s: failed after %v (MessageTimeout 300ms)", name, time.Since(start).Round(time.Millisecond))
		wantClose(t, closes, websocket.StatusPolicyViolation)
	}
	// The flood: frames as fast as the socket takes them.
	c, closes := handshaken(t, transport.Options{}, func(c *hostile.Conn) {
		_ = c.WriteFrame(false, hostile.OpText, false, nil)
		batch := make([]byte, 0, 2*1024)
		for range 1024 {
			batch = append(batch, hostile.Frame(false, hostile.OpContinuation, false, nil)...)
		}
		for c.WriteRaw(batch) == nil {
			flooded.Add(1024)
		}
	})
	start := time.Now()
	pe := readProtocolError(t, c, 5*time.Second)
	if !strings.Contains(pe.Reason, "MaxFragments") {
		t.Fatalf("flood: %v, want the fragment bound", pe)
	}
	t.Logf("empty-continuation flood: failed after %v at frame 4097 of the message (the server had pushed %d frames into the socket)", time.Since(start).Round(time.Millisecond), flooded.Load())
	wantClose(t, closes, websocket.StatusPolicyViolation)
}

// The bounds never cut a sound message: fragmented with pings between the
// fragments, slow (each fragment within the timeout of the message's
// start, the whole under it), over TLS, and many messages in a row.
func TestInspectorPassesSoundTraffic(t *testing.T) {
	c, _ := handshaken(t, transport.Options{MessageTimeout: 600 * time.Millisecond, MaxFragments: 8}, func(c *hostile.Conn) {
		for i := range 3 {
			_ = c.WriteFrame(false, hostile.OpText, false, []byte(fmt.Sprintf("m%d:", i)))
			for j := range 6 {
				_ = c.WriteFrame(true, hostile.OpPing, false, []byte("p"))
				c.Sleep(20 * time.Millisecond)
				_ = c.WriteFrame(j == 5, hostile.OpContinuation, false, []byte{byte('a' + j)})
			}
		}
		big := make([]byte, 200_000)
		_ = c.WriteFrame(true, hostile.OpBinary, false, big)
		for i := range 2000 {
			_ = c.WriteText(fmt.Sprint(i))
		}
	})
	for i := range 3 {
		if _, data, err := c.Read(); err != nil || string(data) != fmt.Sprintf("m%d:abcdef", i) {
			t.Fatalf("fragmented message %d = %q, %v", i, data, err)
		}
	}
	if _, data, err := c.Read(); err != nil || len(data) != 200_000 {
		t.Fatalf("big message: %d bytes, %v", len(data), err)
	}
	for i := range 2000 {
		if _, data, err := c.Read(); err != nil || string(data) != fmt.Sprint(i) {
			t.Fatalf("message %d = %q, %v", i, data, err)
		}
	}
	// Idle between messages is not incomplete: no timeout fires.
	time.Sleep(900 * time.Millisecond)
	if err := c.Err(); err != nil {
		t.Fatalf("an idle connection failed: %v", err)
	}
}

// Over TLS the inspector sits above the TLS records: it sees the frames,
// and its stall bound interrupts a read blocked inside TLS.
func TestInspectorOverTLS(t *testing.T) {
	c, closes := handshakenOver(t, hostile.NewTLSServer, transport.Options{}, func(c *hostile.Conn) {
		_ = c.WriteText("fine")
		_ = c.WriteFrame(true, hostile.OpBinary, true, []byte("masked"))
	})
	if _, data, err := c.Read(); err != nil || string(data) != "fine" {
		t.Fatalf("Read over TLS = %q, %v", data, err)
	}
	if pe := readProtocolError(t, c, 5*time.Second); pe.Code != websocket.StatusProtocolError {
		t.Fatalf("masked over TLS: %v", pe)
	}
	wantClose(t, closes, websocket.StatusProtocolError)

	c, closes = handshakenOver(t, hostile.NewTLSServer, transport.Options{MessageTimeout: 300 * time.Millisecond}, func(c *hostile.Conn) {
		_ = c.WriteRaw(hostile.FrameHeader(true, hostile.OpText, false, 50))
	})
	if pe := readProtocolError(t, c, 5*time.Second); pe.Code != websocket.StatusPolicyViolation {
		t.Fatalf("stall over TLS: %v", pe)
	}
	wantClose(t, closes, websocket.StatusPolicyViolation)
}

// The message bound counts the peer's silence, not the reader's: bytes of
// a message that wait in the socket while the application is busy are not
// a stall.
func TestSlowReaderIsNotAProtocolError(t *testing.T) {
	c, _ := handshaken(t, transport.Options{MessageTimeout: 200 * time.Millisecond}, func(c *hostile.Conn) {
		second := hostile.Frame(true, hostile.OpText, false, []byte("second message"))
		_ = c.WriteRaw(append(hostile.Frame(true, hostile.OpText, false, []byte("first")), second[:5]...))
		c.Sleep(50 * time.Millisecond)
		_ = c.WriteRaw(second[5:])
	})
	if _, data, err := c.Read(); err != nil || string(data) != "first" {
		t.Fatalf("first = %q, %v", data, err)
	}
	time.Sleep(700 * time.Millisecond) // the application is busy
	if _, data, err := c.Read(); err != nil || string(data) != "second message" {
		t.Fatalf("second = %q, %v", data, err)
	}
}
