package badinput

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// Rows of issue 12 on the transport: redirects (1), secrets in dial errors
// (2), masked frames (4), incomplete messages (12), the handshake timeout
// after a 101 (18). Every server here is internal/hostile: raw TCP, frames
// written by hand.

const topSecret = "TOPSECRET42"

// redirector answers every upgrade request with a 302 to location().
func redirector(t *testing.T, location func() string) *hostile.Server {
	return hostile.NewServer(t, func(c *hostile.Conn) {
		for {
			if _, err := c.ReadRequest(); err != nil {
				return
			}
			if c.Respond(302, "Location: "+location()) != nil {
				return
			}
		}
	})
}

// afterHandshake is a hostile server that completes the handshake and
// runs script on every connection.
func afterHandshake(t *testing.T, script func(c *hostile.Conn)) *hostile.Server {
	return hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		script(c)
		c.Hold()
	})
}

// protocolErrorThenReconnect connects to srv and waits for the client to
// lose its first connection to a *transport.ProtocolError with code and
// to connect again.
func protocolErrorThenReconnect(t *testing.T, srv *hostile.Server, code int, opts ...actors.Option) {
	c := connect(t, srv.URL(), opts...)
	testutil.Eventually(t, 8*time.Second, "a second connection", func() bool { return srv.Accepted() >= 2 })
	var pe *transport.ProtocolError
	testutil.Eventually(t, 5*time.Second, "LastError a ProtocolError", func() bool {
		return errors.As(c.Health().LastError, &pe)
	})
	if int(pe.Code) != code {
		t.Fatalf("ProtocolError code %d, want %d", pe.Code, code)
	}
}

func TestTransportHostileInputs(t *testing.T) {
	rows := []row{
		{"handshake redirected to another host (1)", "*transport.RedirectError, fatal, one request, nothing sent to the target", func(t *testing.T) {
			target := hostile.NewServer(t, func(c *hostile.Conn) { _ = c.Handshake(); c.Hold() })
			srv := redirector(t, func() string { return strings.Replace(target.URL(), "127.0.0.1", "localhost", 1) })
			start := time.Now()
			_, err := actors.Connect(ctx(t), testutil.NewSystem(t), srv.URL(), fast(actors.WithHeaders(http.Header{"Authorization": {topSecret}}))...)
			var re *transport.RedirectError
			if !errors.As(err, &re) || re.StatusCode != 302 || transport.IsRecoverable(err) {
				t.Fatalf("got %v, want a fatal *RedirectError 302", err)
			}
			if n := len(srv.Requests()); n != 1 || target.Accepted() != 0 {
				t.Fatalf("%d requests to the redirector, %d connections to the target; want 1 and 0 (%v)", n, target.Accepted(), time.Since(start))
			}
			if strings.Contains(err.Error(), topSecret) {
				t.Fatal(err)
			}
		}},
		{"handshake redirect loop, followed on opt-in (1)", "bounded: FollowRedirects 2 makes 3 requests, then *RedirectError", func(t *testing.T) {
			var srv *hostile.Server
			srv = redirector(t, func() string { return srv.URL() + "loop" })
			_, err := actors.Connect(ctx(t), testutil.NewSystem(t), srv.URL(), fast(func(c *actors.Config) { c.FollowRedirects = 2 }, actors.WithRetryCount(0))...)
			var re *transport.RedirectError
			if !errors.As(err, &re) || len(srv.Requests()) != 3 {
				t.Fatalf("got %v after %d requests, want a *RedirectError after 3", err, len(srv.Requests()))
			}
		}},
		{"FollowRedirects out of range (1)", "*actors.ConfigError naming FollowRedirects", func(t *testing.T) {
			_, err := actors.NewConfig("ws://127.0.0.1:1/", func(c *actors.Config) { c.FollowRedirects = -1 })
			var ce *actors.ConfigError
			if !errors.As(err, &ce) || ce.Field != "FollowRedirects" {
				t.Fatalf("got %v", err)
			}
		}},
		{"dial error with a secret in the query and the user info (2)", "the error text holds no secret", func(t *testing.T) {
			srv := hostile.NewServer(t, func(c *hostile.Conn) { c.Hold() }) // never answers
			u := "ws://" + topSecret + "@" + srv.Addr() + "/ws?listenKey=" + topSecret
			_, err := actors.Connect(ctx(t), testutil.NewSystem(t), u, fast(actors.WithTimeout(200*time.Millisecond), actors.WithRetryCount(0))...)
			if err == nil || strings.Contains(err.Error(), topSecret) {
				t.Fatalf("got %v", err)
			}
		}},
		{"masked frame from the server (4)", "*transport.ProtocolError 1002, reconnect", func(t *testing.T) {
			srv := afterHandshake(t, func(c *hostile.Conn) { _ = c.WriteFrame(true, hostile.OpBinary, true, []byte("garbage")) })
			protocolErrorThenReconnect(t, srv, 1002)
		}},
		{"frame length 2^63 (4)", "*transport.ProtocolError 1002, reconnect", func(t *testing.T) {
			srv := afterHandshake(t, func(c *hostile.Conn) { _ = c.WriteRaw(hostile.FrameHeader(true, hostile.OpBinary, false, 1<<63)) })
			protocolErrorThenReconnect(t, srv, 1002)
		}},
		{"frame header then silence, heartbeat off (12)", "*transport.ProtocolError 1008 after MessageTimeout, reconnect", func(t *testing.T) {
			srv := afterHandshake(t, func(c *hostile.Conn) { _ = c.WriteRaw(hostile.FrameHeader(true, hostile.OpText, false, 64)) })
			protocolErrorThenReconnect(t, srv, 1008, actors.WithHeartbeat(actors.HeartbeatDisabled, time.Second), func(c *actors.Config) { c.MessageTimeout, c.MaxFragments = 200*time.Millisecond, 0 })
		}},
		{"endless empty continuation frames (12)", "*transport.ProtocolError 1008 at MaxFragments, reconnect", func(t *testing.T) {
			srv := afterHandshake(t, func(c *hostile.Conn) {
				_ = c.WriteFrame(false, hostile.OpText, false, nil)
				empty := hostile.Frame(false, hostile.OpContinuation, false, nil)
				for c.WriteRaw(empty) == nil {
				}
			})
			protocolErrorThenReconnect(t, srv, 1008, func(c *actors.Config) { c.MessageTimeout, c.MaxFragments = 0, 64 })
		}},
		{"MessageTimeout below the minimum (12)", "*actors.ConfigError naming MessageTimeout", func(t *testing.T) {
			_, err := actors.NewConfig("ws://127.0.0.1:1/", func(c *actors.Config) { c.MessageTimeout, c.MaxFragments = time.Millisecond, 0 })
			var ce *actors.ConfigError
			if !errors.As(err, &ce) || ce.Field != "MessageTimeout" {
				t.Fatalf("got %v", err)
			}
		}},
		{"101 with a bad accept key, WithTimeout(1s) (18)", "fatal *transport.HandshakeError 101 at once, not after 3 s", func(t *testing.T) {
			srv := hostile.NewServer(t, func(c *hostile.Conn) {
				if _, err := c.ReadRequest(); err == nil && c.Respond101("bogus") == nil {
					c.Hold()
				}
			})
			start := time.Now()
			_, err := actors.Connect(ctx(t), testutil.NewSystem(t), srv.URL(), fast()...)
			var he *transport.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != 101 || transport.IsRecoverable(err) {
				t.Fatalf("got %v", err)
			}
			if took := time.Since(start); took > 2500*time.Millisecond {
				t.Fatalf("Connect took %v", took)
			}
		}},
		{"101 status line then silence, WithTimeout(1s) (18)", "the dial fails within the timeout; each attempt bounded", func(t *testing.T) {
			srv := hostile.NewServer(t, func(c *hostile.Conn) {
				if _, err := c.ReadRequest(); err == nil && c.WriteRaw([]byte("HTTP/1.1 101 Switching Protocols\r\n")) == nil {
					c.Hold()
				}
			})
			start := time.Now()
			_, err := actors.Connect(ctx(t), testutil.NewSystem(t), srv.URL(), fast(actors.WithTimeout(300*time.Millisecond), actors.WithRetryCount(1))...)
			if err == nil {
				t.Fatal("connected")
			}
			if took := time.Since(start); took > 4*time.Second {
				t.Fatalf("2 attempts of 300ms took %v", took)
			}
		}},
	}
	runRows(t, rows)
}
