// Package secrets holds the property test of issue 12: whatever fails
// (dial, TLS, handshake, handshake timeout, redirect, RPC error, give-up,
// a venue's close reason), a client's secrets (in the URL's user info,
// path and query, in headers, in auth params and frames) appear in none of
// its renderings: errors from Connect, Call and the supervisor, Health,
// StateChanges, supervisor events, zap lines at debug (the client's, the
// supervisor's and Proto.Actor's), and the session recording.
package secrets

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

// minStableAfter is Config.StableAfter's documented minimum (actors' own
// constant is unexported).
const minStableAfter = 10 * time.Millisecond

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// creds are one run's secrets, random so that no constant can pass.
type creds struct {
	user, pass, query, path, header, bearer, clientSecret, apiKey, signature string
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// token returns n random letters and digits, holding both.
func token(n int) string {
	for {
		b := make([]byte, n)
		for i := range b {
			k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
			b[i] = alnum[k.Int64()]
		}
		s := string(b)
		if strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			return s
		}
	}
}

func newCreds() creds {
	return creds{
		user: "u" + token(11), pass: "p" + token(15), query: token(32), path: token(60),
		header: token(32), bearer: token(40), clientSecret: token(32), apiKey: token(24), signature: token(64),
	}
}

func (c creds) all() map[string]string {
	return map[string]string{
		"URL user": c.user, "URL password": c.pass, "URL query (listenKey)": c.query, "URL path (listen key)": c.path,
		"header X-Api-Key": c.header, "Authorization bearer": c.bearer, "client_secret": c.clientSecret,
		"api key (WithSecrets)": c.apiKey, "signature (positional auth arg)": c.signature,
	}
}

// url is a URL on hostport carrying the secrets in user info, path and query.
func (c creds) url(scheme, hostport string) string {
	return fmt.Sprintf("%s://%s:%s@%s/ws/%s?listenKey=%s&streams=btcusdt@trade", scheme, c.user, c.pass, hostport, c.path, c.query)
}

// capture collects every rendering a run produces.
type capture struct {
	t       *testing.T
	mu      sync.Mutex
	seen    []string
	logs    *observer.ObservedLogs
	log     *zap.Logger
	rec     lockedBuffer
	errs    int // errors seen: the run must have failed somewhere to mean anything
	errList []error
}

func newCapture(t *testing.T) *capture {
	core, logs := observer.New(zapcore.DebugLevel)
	return &capture{t: t, logs: logs, log: zap.New(core)}
}

// add renders v the ways a program would: %v, %+v, and JSON for values
// that are not errors.
func (c *capture) add(label string, v any) {
	if v == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, label+": "+fmt.Sprintf("%v | %+v", v, v))
	if err, ok := v.(error); ok {
		c.errs++
		c.errList = append(c.errList, err)
		c.seen = append(c.seen, label+" Error(): "+err.Error())
		return
	}
	if b, err := json.Marshal(v); err == nil {
		c.seen = append(c.seen, label+" JSON: "+string(b))
	}
}

func (c *capture) health(label string, h actors.Health) {
	c.add(label+" Health", h)
	c.add(label+" Health.LastError", h.LastError)
	c.add(label+" Health.StopReason", h.StopReason)
	c.add(label+" Health.RecordError", h.RecordError)
}

// check fails the test for every secret found in any rendering, log line
// or recording, and reports how much it looked at.
func (c *capture) check(cr creds) {
	c.t.Helper()
	c.mu.Lock()
	texts := append([]string(nil), c.seen...)
	errs := c.errs
	c.mu.Unlock()
	for _, e := range c.logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		texts = append(texts, fmt.Sprintf("log %s %q %s", e.Level, e.Message, b))
	}
	rec := c.rec.String()
	texts = append(texts, "recording: "+rec)
	if err := record.Replay(strings.NewReader(rec), func(r record.Record) error {
		if r.Binary { // look inside base64 too
			b, err := base64.StdEncoding.DecodeString(r.Data)
			if err != nil {
				return err
			}
			texts = append(texts, "recorded binary frame: "+string(b))
		}
		return nil
	}); err != nil {
		c.t.Errorf("the recording does not replay: %v", err)
	}
	for name, secret := range cr.all() {
		for _, text := range texts {
			if strings.Contains(text, secret) {
				c.t.Errorf("the %s leaked:\n%s", name, text)
			}
		}
	}
	if errs == 0 || c.logs.Len() == 0 {
		c.t.Fatalf("nothing to check: %d errors, %d log lines", errs, c.logs.Len())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// venue is one failure path: a server on 127.0.0.1 and the URL to dial.
type venue struct {
	name string
	url  func(t *testing.T, cr creds) string
	// connects: the client reaches StateConnected (then work runs on it).
	connects bool
	work     func(t *testing.T, cr creds, c *actors.Client, capt *capture)
}

func ctxT(t *testing.T, d time.Duration) context.Context { return testutil.Context(t, d) }

// refusedAddr is a 127.0.0.1 port nothing listens on.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func hostport(t *testing.T, srv *httptest.Server) string {
	return strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
}

// echoVenue accepts WebSocket connections; every JSON-RPC request is
// answered with an error that echoes the request (params included) in
// error.data and the api_key in the message, as careless venues do; any
// other frame is echoed back. closeReason, when set, closes each
// connection after its first frame with that reason.
func echoVenue(t *testing.T, closeReason func(*http.Request) string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if closeReason != nil {
			// Up past the client's StableAfter first: each close is then a
			// reconnect, not a failed attempt that ends in giving up.
			time.Sleep(3 * minStableAfter)
			_ = c.Close(4000, closeReason(r))
			return
		}
		for {
			typ, data, err := c.Read(r.Context())
			if err != nil {
				return
			}
			var req struct {
				ID     json.RawMessage `json:"id"`
				Params struct {
					APIKey string `json:"api_key"`
				} `json:"params"`
			}
			if json.Unmarshal(data, &req) == nil && len(req.ID) > 0 {
				resp := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":13004,"message":"invalid_credentials for key %s","data":{"request":%s}}}`, req.ID, req.Params.APIKey, data)
				data = []byte(resp)
			}
			if err := c.Write(r.Context(), typ, data); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func venues() []venue {
	return []venue{
		{name: "dial refused", url: func(t *testing.T, cr creds) string { return cr.url("ws", refusedAddr(t)) }},
		{name: "TLS untrusted certificate", url: func(t *testing.T, cr creds) string {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return cr.url("wss", hostport(t, srv))
		}},
		{name: "handshake 401 echoing the request", url: func(t *testing.T, cr creds) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprintf(w, "bad key %s for %s (%s)", r.Header.Get("X-Api-Key"), r.URL.String(), r.Header.Get("Authorization"))
			}))
			t.Cleanup(srv.Close)
			return cr.url("ws", hostport(t, srv))
		}},
		{name: "handshake 503 echoing the request", url: func(t *testing.T, cr creds) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "%s", r.URL.RawQuery)
			}))
			t.Cleanup(srv.Close)
			return cr.url("ws", hostport(t, srv))
		}},
		{name: "handshake timeout (raw TCP, never answers)", url: func(t *testing.T, cr creds) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
			wg.Add(1)
			go func() {
				defer wg.Done()
				var conns []net.Conn
				defer func() {
					for _, c := range conns {
						_ = c.Close()
					}
				}()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns = append(conns, c)
					go func() { _, _ = bufio.NewReader(c).ReadString(0) }() // read the request, never answer
				}
			}()
			return cr.url("ws", ln.Addr().String())
		}},
		{name: "redirect carrying the secrets", url: func(t *testing.T, cr creds) string {
			target := cr.url("http", refusedAddr(t))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target, http.StatusFound)
			}))
			t.Cleanup(srv.Close)
			return cr.url("ws", hostport(t, srv))
		}},
		{name: "venue closes with the listen key as reason", connects: true, url: func(t *testing.T, cr creds) string {
			srv := echoVenue(t, func(r *http.Request) string { return "bad listen key " + cr.path + " " + cr.query })
			return cr.url("ws", hostport(t, srv))
		}, work: func(t *testing.T, cr creds, c *actors.Client, capt *capture) {
			testutil.Eventually(t, 5*time.Second, "reconnects", func() bool { return c.Health().Reconnects >= 2 })
			capt.add("LastError after the venue's close", c.Health().LastError)
		}},
		{name: "RPC errors echoing params; recorded frames", connects: true, url: func(t *testing.T, cr creds) string {
			return cr.url("ws", hostport(t, echoVenue(t, nil)))
		}, work: rpcWork},
	}
}

// rpcWork makes the venue echo secrets back in RPC errors and sends
// frames holding secrets, which the recording must hide both ways.
func rpcWork(t *testing.T, cr creds, c *actors.Client, capt *capture) {
	_, err := c.Call(ctxT(t, 5*time.Second), "private/get_account", map[string]string{"api_key": cr.apiKey, "client_secret": cr.clientSecret})
	var rpc *actors.RPCError
	if !errors.As(err, &rpc) || !bytes.Contains(rpc.Data, []byte(cr.clientSecret)) {
		t.Fatalf("want an RPCError whose Data keeps the venue's answer, got %v", err)
	}
	capt.add("Call error", err)
	capt.log.Debug("the program logs the error", zap.Error(err)) // the user's own logger is not scrubbed: only Error() is
	frames := []string{
		`{"jsonrpc":"2.0","method":"public/auth","params":{"grant_type":"client_credentials","client_id":"me","client\u005fsecret":"` + cr.clientSecret + `"}}`,
		`{"op":"auth","args":["` + cr.apiKey + `",1662350400000,"` + cr.signature + `"]}`,
		`{"op":"login","args":[{"apiKey":"` + cr.apiKey + `","passphrase":"` + cr.clientSecret + `","sign":"` + cr.signature + `"}]}`,
		`{"headers":{"Authorization":"Bearer ` + cr.bearer + `"}} {"trailing":"` + cr.apiKey + `"}`,
		`auth ` + cr.apiKey + ` ` + cr.signature,
		`{"client_secret":"` + cr.clientSecret + `"`, // truncated JSON: replaced, never raw
		strings.Repeat("[", 5000) + `"` + cr.clientSecret + `"`,
	}
	for _, f := range frames {
		if err := c.Send(ctxT(t, 5*time.Second), []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range [][]byte{append([]byte{0, 1, 0xff}, cr.apiKey...), {0, 1, 2}} {
		if err := c.SendBinary(ctxT(t, 5*time.Second), b); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "the echoes", func() bool { return c.Health().MessagesIn >= uint64(len(frames)+3) })
	// The venue drops the connection with a close reason naming the secret.
	capt.add("Reconnect", c.Reconnect(ctxT(t, 5*time.Second)))
}

// withoutSecrets drops the first option of options (WithSecrets naming the
// client secret): the Deribit adapter must register it itself.
func withoutSecrets(opts []actors.Option) []actors.Option { return opts[1:] }

func options(cr creds, capt *capture, extra ...actors.Option) []actors.Option {
	return append([]actors.Option{
		actors.WithSecrets(cr.apiKey, cr.clientSecret),
		actors.WithSecrets(cr.apiKey),
		actors.WithHeaders(http.Header{"X-Api-Key": {cr.header}, "Authorization": {"Bearer " + cr.bearer}}),
		actors.WithLogger(capt.log.With(zap.String("side", "client"))),
		actors.WithStateObserver(func(sc actors.StateChange) { capt.add("StateChange", sc); capt.add("StateChange.Err", sc.Err) }),
		actors.WithRecorder(&capt.rec),
		actors.WithTimeout(400 * time.Millisecond), actors.WithRetryCount(1),
		actors.WithRetryDelay(10 * time.Millisecond), actors.WithMaxBackoff(20 * time.Millisecond),
		func(c *actors.Config) { c.CloseWait = 3 * time.Second }, func(c *actors.Config) { c.StableAfter = minStableAfter },
	}, extra...)
}

// TestSecretsAppearNowhere runs every failure path with fresh random
// secrets, three times (once with -short), through Connect, a supervisor
// and a spawned client, and looks for the secrets in everything rendered.
func TestSecretsAppearNowhere(t *testing.T) {
	runs := 3
	if testing.Short() {
		runs = 1
	}
	for run := 0; run < runs; run++ {
		for _, v := range venues() {
			t.Run(fmt.Sprintf("%d/%s", run, v.name), func(t *testing.T) { runVenue(t, v) })
		}
	}
}

func runVenue(t *testing.T, v venue) {
	cr := newCreds()
	capt := newCapture(t)
	sys := actor.NewActorSystem(actors.ActorSystemLogger(capt.log.With(zap.String("side", "protoactor"))))
	defer sys.Shutdown()
	sub := sys.EventStream.Subscribe(func(evt any) {
		capt.add(fmt.Sprintf("event %T", evt), evt)
		switch e := evt.(type) {
		case *supervision.ClientRestarted:
			capt.add("event reason", e.Reason)
		case *supervision.ClientGaveUp:
			capt.add("event reason", e.Reason)
		case *supervision.ClientDisconnected:
			capt.add("event reason", e.Reason)
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	url := v.url(t, cr)

	// 1. Connect.
	c, err := actors.Connect(ctxT(t, 10*time.Second), sys, url, options(cr, capt)...)
	capt.add("Connect error", err)
	if v.connects {
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		v.work(t, cr, c, capt)
		capt.health("connected client", c.Health())
		capt.add("Close", c.Close())
	} else if err == nil {
		_ = c.Close()
		t.Fatal("Connect succeeded")
	}

	// 1b. The Deribit adapter: public/auth refused with the params echoed;
	// the client secret is known only through the adapter.
	if v.connects {
		opts := options(cr, capt)
		dc, ds, err := deribit.Connect(ctxT(t, 10*time.Second), sys, url,
			deribit.Config{ClientID: "me", ClientSecret: cr.clientSecret, Heartbeat: time.Second, AllowShortHeartbeat: true, Logger: capt.log.With(zap.String("side", "deribit"))},
			withoutSecrets(opts)...)
		capt.add("deribit.Connect error", err)
		if err == nil {
			ds.Close()
			_ = dc.Close()
			t.Fatal("deribit.Connect succeeded against a venue that refuses every request")
		}
	}

	// 2. A supervisor: its events and log lines.
	sup, err := supervision.Start(sys, supervision.WithLogger(capt.log.With(zap.String("side", "supervisor"))), supervision.WithRestartBudget(1, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sup.StartClient(ctxT(t, 10*time.Second), url, options(cr, capt)...)
	capt.add("StartClient error", err)
	if sc != nil {
		capt.health("supervised client", sc.Health())
		if v.connects {
			capt.add("supervised Call", func() error {
				_, err := sc.Call(ctxT(t, 5*time.Second), "x", map[string]string{"client_secret": cr.clientSecret})
				return err
			}())
		}
	}
	capt.add("supervisor Stop", sup.Stop())

	// 3. A spawned client: Health and StateChanges while it retries and
	// gives up (the root guardian restarts it).
	cfg, err := actors.NewConfig(url, options(cr, capt)...)
	if err != nil {
		t.Fatal(err)
	}
	spawned, err := actors.Spawn(sys.Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	capt.add("WaitConnected", spawned.WaitConnected(ctxT(t, 3*time.Second)))
	if !v.connects {
		testutil.Eventually(t, 5*time.Second, "a last error", func() bool { return spawned.Health().LastError != nil })
	}
	capt.health("spawned client", spawned.Health())
	capt.add("spawned Close", spawned.Close())
	capt.health("spawned client after Close", spawned.Health())

	capt.check(cr)
	logChain(t, cr, capt)
}

// logChain fails on a cause deeper in an error chain whose own text holds a
// secret: a program that walks the chain and prints a cause must not reach
// one either (transport scrubs net/http's *url.Error, a refusal's body and
// a close reason at the source).
func logChain(t *testing.T, cr creds, capt *capture) {
	capt.mu.Lock()
	errs := append([]error(nil), capt.errList...)
	capt.mu.Unlock()
	found := map[string]int{}
	defer func() {
		for k, n := range found {
			t.Errorf("%d error chains hold a cause (%s) when walked", n, k)
		}
	}()
	var walk func(err error, depth int)
	walk = func(err error, depth int) {
		if err == nil || depth > 20 {
			return
		}
		for name, secret := range cr.all() {
			if strings.Contains(err.Error(), secret) {
				found[fmt.Sprintf("%T with the %s", err, name)]++
				return
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), depth+1)
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, depth+1)
			}
		}
	}
	for _, err := range errs {
		walk(err, 0)
	}
}
