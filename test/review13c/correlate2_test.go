package review13c

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
)

// An id reused after a timeout on the same connection takes the late answer
// of the request that gave up as its own (docs/client.md: a late response
// "is counted and dropped"); LateResponses stays 0.
func TestReusedIDTakesLateAnswer(t *testing.T) {
	cs := newConnSet()
	pe := newRawPeer(t, func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool { return r.Method == "hold" })
	})
	c := dial(t, pe.URL, nil)
	_, err := c.Request(ctxT(t, 300*time.Millisecond), []byte(`{"jsonrpc":"2.0","id":"order-1","method":"hold","params":{"n":1}}`))
	if !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("first: %v, want a timeout", err)
	}
	type res struct {
		resp string
		err  error
	}
	rc := make(chan res, 1)
	go func() {
		r, err := c.Request(ctxT(t, 10*time.Second), []byte(`{"jsonrpc":"2.0","id":"order-1","method":"hold","params":{"n":2}}`))
		rc <- res{string(r), err}
	}()
	eventually(t, 5*time.Second, "second pending", func() bool { return c.Health().Pending == 1 })
	_ = cs.get(0).text(`{"jsonrpc":"2.0","id":"order-1","result":"answer to the first"}`)
	_ = cs.get(0).text(`{"jsonrpc":"2.0","id":"order-1","result":"answer to the second"}`)
	r := <-rc
	if strings.Contains(r.resp, "answer to the first") {
		t.Errorf("the reused id took the late answer of the request that gave up: %s (LateResponses %d)", r.resp, c.Health().LateResponses)
	}
}

// Guard: a late answer on the connection its request went out on is counted,
// one on another connection is not counted and resolves nothing.
func TestLateAnswerRightAndWrongConn(t *testing.T) {
	cs := newConnSet()
	pe := newRawPeer(t, func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool { return r.Method == "hold" })
	})
	c := dial(t, pe.URL, nil)
	for _, id := range []string{"11", "12"} {
		if _, err := c.Request(ctxT(t, 200*time.Millisecond), []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"hold"}`)); !errors.Is(err, actors.ErrTimeout) {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if err := c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	_ = cs.get(1).text(`{"jsonrpc":"2.0","id":12,"result":"wrong conn"}`)
	if a := cs.get(0); a != nil {
		_ = a.text(`{"jsonrpc":"2.0","id":11,"result":"right conn"}`)
	}
	time.Sleep(200 * time.Millisecond)
	if n := c.Health().LateResponses; n > 1 {
		t.Errorf("LateResponses %d: the answer on the other connection was counted", n)
	}
}

// OKX with credentials: while a rotation's new connection B waits for its
// login answer, the old connection A gets an id-less login refusal (which
// Correlate gives the login's id) and a success with the login id: neither
// answers B's login. (Guard.)
func TestOKXLoginAnswerOnOldConnDuringRotation(t *testing.T) {
	v, err := okx.New(okx.Config{APIKey: "ak-1234567", SecretKey: "sk-1234567", Passphrase: "pp-1234567"})
	if err != nil {
		t.Fatal(err)
	}
	cs := newConnSet()
	loginOnB := make(chan string, 1)
	pe := newRawPeer(t, func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if !strings.Contains(string(raw), `"op":"login"`) {
				return false
			}
			if rc.idx == 0 {
				_ = rc.text(`{"event":"login","code":"0","msg":"","id":` + string(r.ID) + `}`)
			} else {
				loginOnB <- string(r.ID)
			}
			return true
		})
	})
	c := dial(t, pe.URL, nil, actors.WithVenue(v))
	rot := make(chan error, 1)
	go func() { rot <- c.Rotate(ctxT(t, 10*time.Second)) }()
	var id string
	select {
	case id = <-loginOnB:
	case <-time.After(10 * time.Second):
		t.Fatal("no login on B")
	}
	a := cs.get(0)
	_ = a.text(`{"event":"error","code":"60009","msg":"Login failed."}`)
	_ = a.text(`{"event":"login","code":"60007","msg":"Invalid sign","id":` + id + `}`)
	time.Sleep(200 * time.Millisecond)
	_ = cs.get(1).text(`{"event":"login","code":"0","msg":"","id":` + id + `}`)
	if err := <-rot; err != nil {
		t.Errorf("Rotate: %v (an answer on the old connection failed B's login?)", err)
	}
}

// Deribit's test_request on a rotation's new connection B while its connect
// hook waits: the answer (public/test) goes out on B, not on the live A, and
// B's hook completes. (Guard.)
func TestTestRequestOnRotationSetup(t *testing.T) {
	var rot atomic.Bool
	pe := newRawPeer(t, func(rc *rawConn) {
		var holdID json.RawMessage
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if rc.idx == 0 || !rot.Load() {
				return false
			}
			switch r.Method {
			case "private/hold":
				holdID = r.ID
				_ = rc.text(`{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}`)
				return true
			case "public/test":
				_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"result":{"version":"1"}}`)
				if holdID != nil {
					_ = rc.text(`{"jsonrpc":"2.0","id":` + string(holdID) + `,"result":"ok"}`)
				}
				return true
			}
			return false
		})
	})
	hook := func(ctx context.Context, s *actors.Setup) error {
		if !rot.Load() {
			return nil
		}
		_, err := s.Call(ctx, "private/hold", nil)
		return err
	}
	c := dial(t, pe.URL, nil, actors.WithConnectHook(hook), actors.WithHeartbeat(actors.HeartbeatDeribit, 5*time.Second),
		actors.WithRequestTimeout(5*time.Second))
	rot.Store(true)
	if err := c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Errorf("Rotate: %v (the test_request on B was not answered on B?)", err)
	}
}

// Low: the late-response memory forgets an id given up twice once the ring
// wraps past its first entry (abandon deletes gaveUp[key] for the old slot
// while the newer slot still names it): the late answer to the second
// request is shown to the handler as unmatched instead of counted late,
// although fewer than 1,024 give-ups came after it.
func TestLateMemoryForgetsIDGivenUpTwice(t *testing.T) {
	t.Run("control: 1022 after, no wrap", func(t *testing.T) { lateMemory(t, 1022) })
	t.Run("1023 after: slot 0 reused", func(t *testing.T) { lateMemory(t, 1023) })
}

func lateMemory(t *testing.T, others int) {
	cs := newConnSet()
	pe := newRawPeer(t, func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool { return r.Method == "hold" })
	})
	var unmatched atomic.Int64
	c := dial(t, pe.URL, nil, actors.WithHandler(func(in actors.Inbound) {
		if in.Unmatched {
			unmatched.Add(1)
		}
	}))
	hold := func(id string) {
		_, _ = c.Request(ctxT(t, 150*time.Millisecond), []byte(`{"jsonrpc":"2.0","id":"`+id+`","method":"hold"}`))
	}
	hold("X") // ring slot 0
	hold("X") // slot 1: the id given up again
	var wg sync.WaitGroup
	for i := 0; i < others; i++ { // slots 2..1023, then slot 0 again
		wg.Add(1)
		go func(i int) { defer wg.Done(); hold(fmt.Sprintf("other-%d", i)) }(i)
	}
	wg.Wait()
	late := c.Health().LateResponses
	_ = cs.get(0).text(`{"jsonrpc":"2.0","id":"X","result":"late"}`)
	eventually(t, 5*time.Second, "the late answer seen", func() bool {
		return c.Health().LateResponses > late || unmatched.Load() > 0
	})
	if unmatched.Load() > 0 {
		t.Errorf("the late answer to X (given up 1,024 give-ups ago at most) reached the handler as unmatched")
	}
}

// A rotation whose new connection refuses the restore keeps the old one
// whole: Rotate fails, the channel stays active, and the old connection's
// notifications still reach the handler. (Guard.)
func TestRefusedRotationKeepsOldWhole(t *testing.T) {
	cs := newConnSet()
	pe := newRawPeer(t, func(rc *rawConn) {
		cs.put(rc)
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if rc.idx >= 1 && isSub(r) {
				_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"error":{"code":10028,"message":"too_many_requests"}}`)
				return true
			}
			return false
		})
	})
	got := make(chan string, 16)
	c := dial(t, pe.URL, nil, actors.WithHandler(func(in actors.Inbound) {
		if in.Channel != "" {
			got <- string(in.Data)
		}
	}))
	if err := c.Subscribe(ctxT(t, 5*time.Second), "book.a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rotate(ctxT(t, 10*time.Second)); !errors.Is(err, actors.ErrRotationFailed) {
		t.Fatalf("Rotate: %v, want ErrRotationFailed", err)
	}
	if s := chanState(c, "book.a"); s != actors.ChannelActive {
		t.Errorf("book.a is %v after the failed rotation, want active", s)
	}
	_ = cs.get(0).text(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.a","data":{"n":1}}}`)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Errorf("the old connection's notification never reached the handler")
	}
	if g := c.Health().Generation; g != 1 {
		t.Errorf("generation %d, want 1 (the old connection)", g)
	}
}
