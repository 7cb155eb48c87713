package review13b

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/okx"
	"github.com/zenws/zenws/internal/testutil"
)

// myVenue is a venue written against package venue alone, with knobs.
type myVenue struct {
	correlate func([]byte) (venue.Response, bool)
	classify  func([]byte) venue.Class
	connect   func(ctx context.Context, s venue.Session) error
	ping      *venue.TextPing
	secrets   []string
}

func (v *myVenue) Name() string           { return "mine" }
func (v *myVenue) Dialect() venue.Dialect { return okx.Dialect{} }

type corrVenue struct{ *myVenue }

func (v corrVenue) Correlate(b []byte) (venue.Response, bool) { return v.correlate(b) }

type classVenue struct{ *myVenue }

func (v classVenue) Classify(b []byte) venue.Class { return v.classify(b) }

type connVenue struct{ *myVenue }

func (v connVenue) OnConnect(ctx context.Context, s venue.Session) error { return v.connect(ctx, s) }

type pingVenue struct{ *myVenue }

func (v pingVenue) TextPing() venue.TextPing { return *v.ping }

type secVenue struct{ *myVenue }

// corrConnVenue correlates and connects.
type corrConnVenue struct{ *myVenue }

func (v corrConnVenue) Correlate(b []byte) (venue.Response, bool) { return okxCorrelate(b) }
func (v corrConnVenue) OnConnect(ctx context.Context, s venue.Session) error {
	return v.connect(ctx, s)
}

func (v secVenue) Secrets() []string { return v.secrets }

// okxCorrelate is a minimal correct correlator for our peer.
func okxCorrelate(b []byte) (venue.Response, bool) {
	var f struct {
		ID    json.RawMessage `json:"id"`
		Event string          `json:"event"`
		Arg   json.RawMessage `json:"arg"`
	}
	if json.Unmarshal(b, &f) != nil || len(f.ID) == 0 || f.Event == "" {
		return venue.Response{}, false
	}
	if f.Event == "error" {
		return venue.Response{ID: f.ID, Err: &venue.Error{Code: 1, Message: "x"}}, true
	}
	// The whole event is the Result okx.Dialect reads (it checks the event
	// is the one its request asked for).
	return venue.Response{ID: f.ID, Result: json.RawMessage(b)}, true
}

func TestWithVenueNil(t *testing.T) {
	pe := newPeer(t, nil)
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("WithVenue(nil) panicked: %v\n%s", r, debug.Stack())
		}
	}()
	c, err := connect(t, pe.URL, actors.WithVenue(nil))
	t.Logf("WithVenue(nil): err=%v", err)
	if err == nil && c.State() != actors.StateConnected {
		t.Errorf("state %v", c.State())
	}
}

// Found by review (fixed): okx.New refuses partial credentials and returns a nil *Venue;
// a program that passes it on (WithVenue(v) with the error unchecked, or
// any typed-nil venue) panics inside actors.Connect on the caller's
// goroutine (nil dereference in (*okx.Venue).Secrets, called from
// actors.(*Config).venueParts). Expected: Connect returns an error (an
// invalid config, as for every other bad option); actual: a panic.
func TestWithVenueTypedNil(t *testing.T) {
	pe := newPeer(t, nil)
	v, nerr := okx.New(okx.Config{APIKey: "only-the-key"})
	t.Logf("okx.New(partial): %v, %v", v, nerr)
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Connect(WithVenue(typed nil *okx.Venue)) panicked: %v", r)
		}
	}()
	_, err := connect(t, pe.URL, actors.WithVenue(v))
	if err == nil {
		t.Errorf("connected with a nil venue")
	}
}

func TestCorrelatorPanics(t *testing.T) {
	pe := newPeer(t, nil)
	pe.onOpen = func(p *pconn) {
		time.Sleep(50 * time.Millisecond)
		_ = p.write(`{"boom":1}`)
		_ = p.write(`{"x":1}`)
	}
	var box inbox
	v := corrVenue{&myVenue{correlate: func(b []byte) (venue.Response, bool) {
		if string(b) == `{"boom":1}` {
			panic("correlator boom")
		}
		return okxCorrelate(b)
	}}}
	c, err := connect(t, pe.URL, actors.WithVenue(v), actors.WithHandler(box.add), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, "both frames delivered", func() bool { return box.cnt.Load() >= 2 })
	if err := c.Subscribe(testutil.Context(t, 3*time.Second), "tickers:BTC-USDT"); err != nil {
		t.Errorf("subscribe after a correlator panic: %v", err)
	}
	if pe.conns.Load() != 1 {
		t.Errorf("conns %d", pe.conns.Load())
	}
}

// A correlator that claims every frame answers something, with a nil ID.
func TestCorrelatorClaimsEverything(t *testing.T) {
	pe := newPeer(t, nil)
	pe.onOpen = func(p *pconn) {
		time.Sleep(50 * time.Millisecond)
		_ = p.write(`{"x":1}`)
	}
	var box inbox
	v := corrVenue{&myVenue{correlate: func(b []byte) (venue.Response, bool) {
		return venue.Response{}, true
	}}}
	c, err := connect(t, pe.URL, actors.WithVenue(v), actors.WithHandler(box.add), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if c.State() != actors.StateConnected {
		t.Errorf("state %v", c.State())
	}
	t.Logf("delivered %d", box.cnt.Load())
}

func TestClassifierPanics(t *testing.T) {
	pe := newPeer(t, nil)
	pe.onOpen = func(p *pconn) {
		time.Sleep(50 * time.Millisecond)
		for i := 0; i < 5; i++ {
			_ = p.write(fmt.Sprintf(`{"n":%d}`, i))
		}
	}
	var box inbox
	v := classVenue{&myVenue{classify: func(b []byte) venue.Class { panic("classify boom") }}}
	c, err := connect(t, pe.URL, actors.WithVenue(v), actors.WithHandler(box.add), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, "frames delivered as they are", func() bool { return box.cnt.Load() >= 5 })
	if c.State() != actors.StateConnected || pe.conns.Load() != 1 {
		t.Errorf("state %v conns %d", c.State(), pe.conns.Load())
	}
}

func TestConnectorPanics(t *testing.T) {
	pe := newPeer(t, nil)
	var calls atomic.Int64
	v := connVenue{&myVenue{connect: func(ctx context.Context, s venue.Session) error {
		calls.Add(1)
		panic("connector boom")
	}}}
	sys := testutil.NewSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, pe.URL, actors.WithVenue(v), actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(20*time.Millisecond))
	if c != nil {
		defer c.Close()
	}
	t.Logf("err=%v calls=%d", err, calls.Load())
	if err == nil {
		t.Error("connected with a panicking connector")
	}
}

// Found by review (fixed): a Connector that ignores its ctx holds actors.Connect past
// the caller's ctx. Expected: Connect(ctx with 1 s) returns by about 1 s
// (every other wait in Connect honours ctx); actual: it returns after
// ~6 s ("wait connected: context deadline exceeded"), the caller's
// goroutine blocked on the venue's OnConnect.
func TestConnectorBlocks(t *testing.T) {
	pe := newPeer(t, nil)
	release := make(chan struct{})
	defer close(release)
	v := connVenue{&myVenue{connect: func(ctx context.Context, s venue.Session) error {
		select { // ignores ctx on purpose
		case <-release:
		case <-time.After(20 * time.Second):
		}
		return nil
	}}}
	sys := testutil.NewSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	start := time.Now()
	c, err := actors.Connect(ctx, sys, pe.URL, actors.WithVenue(v))
	el := time.Since(start)
	t.Logf("err=%v after %v", err, el)
	if el > 2*time.Second {
		t.Errorf("Connect with a 1s ctx took %v", el)
	}
	if c != nil {
		cst := time.Now()
		_ = c.Close()
		if d := time.Since(cst); d > 3*time.Second {
			t.Errorf("Close took %v with a blocked connector", d)
		}
	}
}

// A Session kept after OnConnect returned and used after a reconnect: its
// requests go "on that connection only", so they must fail, promptly, and
// never reach the new connection.
func TestSessionAfterReconnect(t *testing.T) {
	pe := newPeer(t, nil)
	sessCh := make(chan venue.Session, 4)
	v := corrConnVenue{&myVenue{connect: func(ctx context.Context, s venue.Session) error {
		sessCh <- s
		return nil
	}}}
	c, err := connect(t, pe.URL, actors.WithVenue(v), actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	s := <-sessCh
	if err := c.Reconnect(testutil.Context(t, 3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConnected(testutil.Context(t, 3*time.Second)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, rerr := s.Request(ctx, []byte(`{"id":"`+fmt.Sprint(s.NextID())+`","op":"subscribe","args":[{"channel":"stale"}]}`))
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	serr := s.Send(sctx, []byte(`{"stale":1}`))
	t.Logf("stale Request: %v after %v; stale Send: %v; gen now %d, session gen %d", rerr, time.Since(start), serr, c.Health().Generation, s.Generation())
	if rerr == nil || serr == nil {
		t.Errorf("a gen-%d session still works after a reconnect", s.Generation())
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Errorf("stale session calls hung for %v", time.Since(start))
	}
	for _, f := range pe.snapshot() {
		if f == `{"stale":1}` || strings.Contains(f, `"stale"`) {
			t.Errorf("a stale session's frame reached the new connection: %s", f)
		}
	}
}

// Permanent from a custom connector: fatal, one attempt.
func TestConnectorPermanent(t *testing.T) {
	pe := newPeer(t, nil)
	v := connVenue{&myVenue{connect: func(ctx context.Context, s venue.Session) error {
		return venue.Permanent(errors.New("bad creds"))
	}}}
	_, err := connect(t, pe.URL, actors.WithVenue(v))
	var fe *actors.FatalError
	if !errors.As(err, &fe) || pe.conns.Load() > 1 {
		t.Errorf("err %v conns %d", err, pe.conns.Load())
	}
}

// Secreter returning "" and short strings must not blank everything or panic.
func TestSecreterDegenerate(t *testing.T) {
	pe := newPeer(t, nil)
	pe.onOpen = func(p *pconn) { time.Sleep(50 * time.Millisecond); _ = p.write(`{"hello":"world"}`) }
	var box inbox
	v := secVenue{&myVenue{secrets: []string{"", "a", "e", " ", "REDACTED"}}}
	var rec testutil.SyncBuffer
	c, err := connect(t, pe.URL, actors.WithVenue(v), actors.WithHandler(box.add), actors.WithRecorder(&rec))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "delivery", func() bool { return box.cnt.Load() >= 1 })
	if h := c.Health(); h.Endpoint == "" {
		t.Errorf("endpoint empty")
	}
	t.Logf("recording: %.300s", rec.String())
}

// TextPinger with degenerate values.
func TestTextPingDegenerate(t *testing.T) {
	for i, tp := range []venue.TextPing{{}, {Ping: []byte("ping"), Pong: []byte("pong"), Every: -time.Second}, {Ping: []byte("ping"), Pong: nil, Every: time.Millisecond}} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pe := newPeer(t, nil)
			tp := tp
			v := pingVenue{&myVenue{ping: &tp}}
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic %v", r)
				}
			}()
			c, err := connect(t, pe.URL, actors.WithVenue(v))
			time.Sleep(300 * time.Millisecond)
			t.Logf("%+v: err=%v pings=%d conns=%d", tp, err, pe.pings.Load(), pe.conns.Load())
			if pe.pings.Load() > 1000 {
				t.Errorf("ping flood: %d pings in 300ms", pe.pings.Load())
			}
			_ = c
		})
	}
}

// The same with a Connector that honours ctx: when is its ctx cancelled?
func TestConnectorCtxBound(t *testing.T) {
	pe := newPeer(t, nil)
	start := time.Now()
	done := make(chan time.Duration, 8)
	v := connVenue{&myVenue{connect: func(ctx context.Context, s venue.Session) error {
		<-ctx.Done()
		done <- time.Since(start)
		return ctx.Err()
	}}}
	sys := testutil.NewSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, pe.URL, actors.WithVenue(v))
	el := time.Since(start)
	var first time.Duration
	select {
	case first = <-done:
	default:
	}
	t.Logf("err=%v after %v; OnConnect ctx ended at %v", err, el, first)
	if el > 2*time.Second {
		t.Errorf("Connect with a 1s ctx took %v", el)
	}
	if c != nil {
		_ = c.Close()
	}
}
