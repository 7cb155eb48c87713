package review13c

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/actors/venue"

	"github.com/zenws/zenws/actors"
)

// connSet keeps the raw connections by index, for tests that write on one
// connection by hand.
type connSet struct {
	mu sync.Mutex
	m  map[int]*rawConn
	ch chan int
}

func newConnSet() *connSet { return &connSet{m: map[int]*rawConn{}, ch: make(chan int, 16)} }
func (s *connSet) put(rc *rawConn) {
	s.mu.Lock()
	if _, ok := s.m[rc.idx]; !ok {
		s.m[rc.idx] = rc
		s.ch <- rc.idx
	}
	s.mu.Unlock()
}
func (s *connSet) get(i int) *rawConn { s.mu.Lock(); defer s.mu.Unlock(); return s.m[i] }

// A stale answer on the draining connection resolves a request that went
// out on the new one: a Request with id 777 timed out on connection A; after
// a rotation the program sends id 777 again (on B); A, still draining, now
// answers its old 777, and the new request returns A's answer as its own.
// The pending table is keyed by id alone (correlate.go resolve), never by
// the connection the request went out on.
func TestStaleAnswerFromDrainingConnResolvesNewRequest(t *testing.T) {
	cs := newConnSet()
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			return r.Method == "hold" // never answered by the peer itself
		})
	}
	c := dial(t, pe.URL, nil, actors.WithRequestTimeout(10*time.Second))
	// 1. id 777 on A, times out.
	_, err := c.Request(ctxT(t, 300*time.Millisecond), []byte(`{"jsonrpc":"2.0","id":777,"method":"hold"}`))
	if !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("first 777: %v, want a timeout", err)
	}
	// 2. id 778 on A keeps A draining after the switch.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(ctxT(t, 20*time.Second), []byte(`{"jsonrpc":"2.0","id":778,"method":"hold"}`))
		errc <- err
	}()
	eventually(t, 5*time.Second, "778 pending", func() bool { return c.Health().Pending == 1 })
	// 3. rotate: B is live, A drains.
	if err := c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	// 4. 777 again, on B (unanswered by B).
	type res struct {
		resp string
		err  error
	}
	rc := make(chan res, 1)
	go func() {
		r, err := c.Request(ctxT(t, 2*time.Second), []byte(`{"jsonrpc":"2.0","id":777,"method":"hold"}`))
		rc <- res{string(r), err}
	}()
	eventually(t, 5*time.Second, "second 777 pending", func() bool { return c.Health().Pending == 2 })
	// 5. A answers its old 777.
	if err := cs.get(0).text(`{"jsonrpc":"2.0","id":777,"result":"stale answer from A"}`); err != nil {
		t.Fatal(err)
	}
	r := <-rc
	if strings.Contains(r.resp, "stale answer from A") {
		t.Errorf("the request sent on B took A's stale answer as its own: %s", r.resp)
	}
	_ = cs.get(0).text(`{"jsonrpc":"2.0","id":778,"result":"ok"}`)
	<-errc
}

// While a rotation's new connection B is in setup, B sends an answer with
// the id of a request that went out on the live connection A: it resolves
// A's request (same cause: resolve ignores the connection).
func TestAnswerOnOtherConnResolvesDuringRotation(t *testing.T) {
	cs := newConnSet()
	restoreSeen := make(chan struct{}, 1)
	release := make(chan struct{})
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if r.Method == "hold" {
				return true
			}
			if isSub(r) && rc.idx == 1 {
				select {
				case restoreSeen <- struct{}{}:
				default:
				}
				<-release
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	rotErr := make(chan error, 1)
	go func() { rotErr <- c.Rotate(ctxT(t, 15*time.Second)) }()
	<-restoreSeen
	type res struct {
		resp string
		err  error
	}
	rc := make(chan res, 1)
	go func() {
		r, err := c.Request(ctxT(t, 2*time.Second), []byte(`{"jsonrpc":"2.0","id":"order-1","method":"hold"}`))
		rc <- res{string(r), err}
	}()
	eventually(t, 5*time.Second, "order-1 pending", func() bool { return c.Health().Pending >= 1 })
	time.Sleep(50 * time.Millisecond)
	_ = cs.get(1).text(`{"jsonrpc":"2.0","id":"order-1","result":"forged by B"}`)
	r := <-rc
	close(release)
	if strings.Contains(r.resp, "forged by B") {
		t.Errorf("a request sent on A was resolved by a frame on B: %s", r.resp)
	}
	<-rotErr
}

// corrVenue answers with {"ack":<id>,"ok":bool,"why":"..."}; frames holding
// "boom" make Correlate panic, "garbage" an unusable id, "dup" a match
// with the id 5 whatever the frame.
type corrVenue struct{ myVenue }

func (corrVenue) Correlate(data []byte) (venue.Response, bool) {
	s := string(data)
	switch {
	case strings.Contains(s, "boom"):
		panic("Correlate exploded " + secretVal)
	case strings.Contains(s, "garbage"):
		return venue.Response{ID: json.RawMessage(`{"x":[1,2`)}, true
	case !strings.Contains(s, `"ack"`):
		return venue.Response{}, false
	}
	var a struct {
		Ack json.RawMessage `json:"ack"`
		OK  bool            `json:"ok"`
		Why string          `json:"why"`
	}
	if json.Unmarshal(data, &a) != nil {
		return venue.Response{}, false
	}
	if a.OK {
		return venue.Response{ID: a.Ack, Result: json.RawMessage(`"done"`)}, true
	}
	return venue.Response{ID: a.Ack, Err: &venue.Error{Code: 7, Message: a.Why}}, true
}

// (Holds: guard.) A Correlator that panics, returns garbage ids, and
// refusals carrying the venue's secret field: the client survives, a
// refusal is an *RPCError whose text hides the value, garbage frames reach
// the handler.
func TestCorrelatorHostile(t *testing.T) {
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			switch r.Method {
			case "ok":
				_ = rc.text(`{"boom":1}`)
				_ = rc.text(`{"garbage":1}`)
				_ = rc.text(`{"ack":` + string(r.ID) + `,"ok":true}`)
				return true
			case "no":
				_ = rc.text(`{"ack":` + string(r.ID) + `,"ok":false,"why":"denied SessionCookie=` + secretVal + `"}`)
				return true
			}
			return false
		})
	}
	var mu sync.Mutex
	var got []string
	logs, lg := obsLogger()
	c := dial(t, pe.URL, nil, actors.WithVenue(corrVenue{myVenue{fields: []string{"SessionCookie"}}}), actors.WithLogger(lg),
		actors.WithHandler(func(in actors.Inbound) { mu.Lock(); got = append(got, string(in.Data)); mu.Unlock() }))
	for i := 0; i < 20; i++ {
		if _, err := c.Request(ctxT(t, 5*time.Second), []byte(`{"id":`+strconv.Itoa(1000+i)+`,"method":"ok"}`)); err != nil {
			t.Fatalf("ok %d: %v", i, err)
		}
	}
	_, err := c.Request(ctxT(t, 5*time.Second), []byte(`{"id":"r-1","method":"no"}`))
	var re *actors.RPCError
	if !errors.As(err, &re) || re.Code != 7 {
		t.Fatalf("refusal: %v (%T), want an *RPCError code 7", err, err)
	}
	if strings.Contains(err.Error(), secretVal) || strings.Contains(fmt.Sprintf("%#v", re), secretVal) {
		t.Errorf("secret in a Correlator refusal's text: %v", err)
	}
	eventually(t, 5*time.Second, "garbage and boom frames delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 40 })
	_ = c.Close()
	if strings.Contains(logText(logs), secretVal) {
		t.Error("secret (the Correlator's panic value) in the logs")
	}
}

// (Guard.) Generations after a rotation: a frame the draining connection A
// sends after the switch is recorded and delivered with A's generation; a
// Send after the switch leaves on B and is recorded with B's.
func TestGenerationsAcrossRotation(t *testing.T) {
	cs := newConnSet()
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool { return r.Method == "hold" })
	}
	var rec syncBuf
	var mu sync.Mutex
	gens := map[string]uint64{}
	c := dial(t, pe.URL, nil, actors.WithRecorder(&rec), actors.WithRequestTimeout(10*time.Second),
		actors.WithHandler(func(in actors.Inbound) { mu.Lock(); gens[string(in.Data)] = in.Generation; mu.Unlock() }))
	g1 := c.Health().Generation
	hold := make(chan struct{})
	go func() {
		_, _ = c.Request(ctxT(t, 20*time.Second), []byte(`{"jsonrpc":"2.0","id":"keep","method":"hold"}`))
		close(hold)
	}()
	eventually(t, 5*time.Second, "keep pending", func() bool { return c.Health().Pending == 1 })
	if err := c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	g2 := c.Health().Generation
	_ = cs.get(0).text(`{"late":"from A"}`)
	if err := c.Send(ctxT(t, 5*time.Second), []byte(`{"order":"after switch"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "A's late frame delivered", func() bool { mu.Lock(); defer mu.Unlock(); _, ok := gens[`{"late":"from A"}`]; return ok })
	mu.Lock()
	if g := gens[`{"late":"from A"}`]; g != g1 {
		t.Errorf("A's frame delivered with generation %d, want %d (B is %d)", g, g1, g2)
	}
	mu.Unlock()
	_ = cs.get(0).text(`{"jsonrpc":"2.0","id":"keep","result":"ok"}`)
	<-hold
	_ = c.Close()
	_ = record.Replay(strings.NewReader(rec.String()), func(r record.Record) error {
		switch r.Data {
		case `{"late":"from A"}`:
			if r.Generation != g1 {
				t.Errorf("A's late frame recorded with gen %d, want %d", r.Generation, g1)
			}
		case `{"order":"after switch"}`:
			if r.Generation != g2 {
				t.Errorf("the order after the switch recorded with gen %d, want %d", r.Generation, g2)
			}
		}
		return nil
	})
}

// sessVenue is a Connector that makes one request through venue.Session
// and keeps its error.
type sessVenue struct {
	myVenue
	msg  string
	errs chan error
}

func (v sessVenue) OnConnect(ctx context.Context, s venue.Session) error {
	_, err := s.Request(ctx, []byte(v.msg))
	select {
	case v.errs <- err:
	default:
	}
	return nil
}

type sessCorrVenue struct{ sessVenue }

func (sessCorrVenue) Correlate(data []byte) (venue.Response, bool) {
	return corrVenue{}.Correlate(data)
}

// (Guard.) A refusal answered to a venue.Session request is an error that
// errors.As finds as a *venue.Error with the venue's code and message, for
// a JSON-RPC error (no Correlator) and for a Correlator's refusal.
func TestSessionRefusalIsVenueError(t *testing.T) {
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			switch r.Method {
			case "login":
				_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"error":{"code":13004,"message":"invalid_credentials"}}`)
				return true
			case "login2":
				_ = rc.text(`{"ack":` + string(r.ID) + `,"ok":false,"why":"invalid_credentials"}`)
				return true
			}
			return false
		})
	}
	for _, tc := range []struct {
		name string
		v    func(chan error) venue.Venue
		code int
	}{
		{"jsonrpc", func(e chan error) venue.Venue {
			return sessVenue{msg: `{"jsonrpc":"2.0","id":"L1","method":"login"}`, errs: e}
		}, 13004},
		{"correlator", func(e chan error) venue.Venue {
			return sessCorrVenue{sessVenue{msg: `{"jsonrpc":"2.0","id":"L2","method":"login2"}`, errs: e}}
		}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := make(chan error, 1)
			v := tc.v(errs)
			if _, ok := v.(venue.Connector); !ok {
				t.Skip("not a Connector (embedding ambiguity)")
			}
			c := dial(t, pe.URL, nil, actors.WithVenue(v))
			_ = c
			select {
			case err := <-errs:
				var ve *venue.Error
				if !errors.As(err, &ve) || ve.Code != tc.code || ve.Message != "invalid_credentials" {
					t.Errorf("Session.Request refusal: %v (%T), want a *venue.Error %d invalid_credentials", err, err, tc.code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("OnConnect never ran")
			}
		})
	}
}
