package badinput

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// Rows of the secrets engineer (issue 12 items 2, 3, 14 recorder part, 15).
func TestHostileInputsSecrets(t *testing.T) {
	listenKey := "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a"
	rows := []row{
		{"dial refused with a listen key in path and query, a key as URL user", "no secret in the Connect error, Health, StateChange or any log line", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			_ = ln.Close()
			core, logs := observer.New(zapcore.DebugLevel)
			var mu sync.Mutex
			var changes []string
			url := fmt.Sprintf("ws://KEYASUSER77:pw@%s/ws/%s?listenKey=%s", addr, listenKey, listenKey)
			_, err = actors.Connect(ctx(t), testutil.NewSystem(t), url, fast(actors.WithRetryCount(1), actors.WithLogger(zap.New(core)),
				actors.WithStateObserver(func(c actors.StateChange) {
					mu.Lock()
					defer mu.Unlock()
					changes = append(changes, fmt.Sprint(c))
				}))...)
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			mu.Lock()
			all := err.Error() + strings.Join(changes, " ")
			mu.Unlock()
			for _, e := range logs.All() {
				all += e.Message + fmt.Sprint(e.ContextMap())
			}
			if strings.Contains(all, listenKey) || strings.Contains(all, "KEYASUSER77") || logs.Len() == 0 {
				t.Fatalf("a secret leaked (%d log lines): %s", logs.Len(), all)
			}
		}},
		{"venue echoes client_secret in error.data", "RPCError.Data keeps the answer, Error() masks it", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			srv.Handle("private/x", func(_ *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
				return nil, &wstest.RPCError{Code: 13004, Message: "invalid_credentials", Data: params}
			})
			c := connect(t, srv.URL())
			_, err := c.Call(ctx(t), "private/x", map[string]string{"client_secret": "ECHOED-SECRET-1"})
			var rpc *actors.RPCError
			if !errors.As(err, &rpc) || !bytes.Contains(rpc.Data, []byte("ECHOED-SECRET-1")) || strings.Contains(err.Error(), "ECHOED-SECRET-1") {
				t.Fatalf("got %v (data %s)", err, rpc.Data)
			}
		}},
		{"recorded frames: nested 200 deep, escaped name, OKX, Bybit args, Authorization, plain text, trailing data, 100k nesting", "secrets masked, other bytes kept, unverifiable frames replaced", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			var rec testutil.SyncBuffer
			box := make(chan actors.Inbound, 64)
			c := connect(t, srv.URL(), actors.WithRecorder(&rec), actors.WithSecrets("PLAIN-SECRET-77"), actors.WithHandler(func(in actors.Inbound) { box <- in }))
			frames := []string{
				strings.Repeat(`{"a":`, 200) + `{"client_secret":"S-DEEP-1"}` + strings.Repeat("}", 200),
				`{"client\u005fsecret":"S-ESC-1"}`,
				`{"op":"login","args":[{"apiKey":"S-OKX-KEY","passphrase":"S-OKX-PASS","timestamp":"1","sign":"S-OKX-SIGN"}]}`,
				`{"op":"auth","args":["S-BYBIT-KEY",1662350400000,"S-BYBIT-SIG"]}`,
				`{"Authorization":"Bearer S-AUTH-1"}`,
				`auth PLAIN-SECRET-77`,
				`{"token":"S-TRAIL-1"} {"keep":"me"}`,
				strings.Repeat("[", 100000),
			}
			for _, f := range frames {
				if err := c.Send(ctx(t), []byte(f)); err != nil {
					t.Fatal(err)
				}
				next(t, box)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			out := rec.String()
			for _, s := range []string{"S-DEEP-1", "S-ESC-1", "S-OKX-PASS", "S-OKX-SIGN", "S-BYBIT-KEY", "S-BYBIT-SIG", "S-AUTH-1", "PLAIN-SECRET-77", "S-TRAIL-1", strings.Repeat("[", 100)} {
				if strings.Contains(out, s) {
					t.Fatalf("the recording holds %q", s)
				}
			}
			if !strings.Contains(out, `{\"keep\":\"me\"}`) || !strings.Contains(out, "unverifiable") {
				t.Fatalf("trailing data lost or no placeholder:\n%.2000s", out)
			}
		}},
		{"recorder whose writer never returns, 100 frames a second", "the connection stays up, drops counted in Health.RecordsDropped", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			release := make(chan struct{})
			defer close(release)
			c := connect(t, srv.URL(), actors.WithRecorder(blockingWriter(release)), func(c *actors.Config) { c.RecordQueue, c.RecordQueueBytes = 8, 1<<20 },
				actors.WithHeartbeat(actors.HeartbeatPingPong, 100*time.Millisecond))
			for i := 0; i < 100; i++ {
				if err := c.Send(ctx(t), []byte("frame")); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if h := c.Health(); h.RecordsDropped == 0 || h.Reconnects != 0 {
				t.Fatalf("dropped %d, reconnects %d", h.RecordsDropped, h.Reconnects)
			}
		}},
		{"recorder writer that panics", "recording stops (Health.RecordError is a *PanicError), client connected", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			c := connect(t, srv.URL(), actors.WithRecorder(panicking{}))
			if err := c.Send(ctx(t), []byte("x")); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 5*time.Second, "RecordError", func() bool { return errors.As(c.Health().RecordError, new(*actors.PanicError)) })
			if c.State() != actors.StateConnected {
				t.Fatalf("state %v", c.State())
			}
		}},
	}
	runRows(t, rows)
}

type blockingWriter chan struct{}

func (b blockingWriter) Write(p []byte) (int, error) { <-b; return len(p), nil }

type panicking struct{}

func (panicking) Write([]byte) (int, error) { panic("writer exploded") }
