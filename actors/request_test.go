package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// rpcServer answers "add" with the sum of params.a and params.b, "fail"
// with a JSON-RPC error, and nothing else (echo off: silence).
func rpcServer() *wstest.Server {
	return wstest.NewServer(wstest.WithEcho(false),
		wstest.WithResponder("add", func(_ *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) {
			var v struct{ A, B int }
			if err := json.Unmarshal(p, &v); err != nil {
				return nil, &wstest.RPCError{Code: -32602, Message: "invalid params"}
			}
			return v.A + v.B, nil
		}),
		wstest.WithResponder("fail", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			return nil, &wstest.RPCError{Code: 10028, Message: "too_many_requests", Data: map[string]int{"wait": 1}}
		}))
}

func TestCallResultAndRPCError(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	res, err := c.Call(ctxT(t, 2*time.Second), "add", map[string]int{"a": 2, "b": 40})
	if err != nil || string(res) != "42" {
		t.Fatalf("Call(add) = %s, %v", res, err)
	}
	res, err = c.Call(ctxT(t, 2*time.Second), "fail", nil)
	var rpcErr *actors.RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != 10028 || rpcErr.Message != "too_many_requests" || string(rpcErr.Data) != `{"wait":1}` || res != nil {
		t.Fatalf("Call(fail) = %s, %v; want *RPCError 10028 and no result", res, err)
	}
	h := c.Health()
	if h.RTTSamples != 2 || h.RTTP50 <= 0 || h.Pending != 0 {
		t.Fatalf("Health after two calls: %+v", h)
	}
}

func TestRequestWithOwnIDs(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	for _, id := range []string{`7`, `"order-7"`, `-3`} {
		resp, err := c.Request(ctxT(t, 2*time.Second), []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"add","params":{"a":1,"b":1}}`))
		if err != nil {
			t.Fatalf("id %s: %v", id, err)
		}
		var r struct {
			ID     json.RawMessage
			Result int
		}
		if err := json.Unmarshal(resp, &r); err != nil || string(r.ID) != id || r.Result != 2 {
			t.Fatalf("id %s: response %s", id, resp)
		}
	}
	resp, err := c.Request(ctxT(t, 2*time.Second), []byte(`{"jsonrpc":"2.0","id":"x","method":"fail"}`))
	var rpcErr *actors.RPCError
	if !errors.As(err, &rpcErr) || len(resp) == 0 {
		t.Fatalf("Request(fail) = %s, %v; want the response and a *RPCError", resp, err)
	}
}

func TestDuplicateIDSendsNothing(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	msg := []byte(`{"jsonrpc":"2.0","id":5,"method":"silence"}`)
	first := make(chan error, 1)
	go func() {
		_, err := c.Request(ctxT(t, 500*time.Millisecond), msg)
		first <- err
	}()
	eventually(t, 2*time.Second, "the first request pending", func() bool { return c.Health().Pending == 1 })
	if _, err := c.Request(ctxT(t, time.Second), msg); !errors.Is(err, actors.ErrDuplicateID) {
		t.Fatalf("second Request with the same id = %v", err)
	}
	// The integer 5 and the string "5" are different ids.
	if _, err := c.Request(ctxT(t, 50*time.Millisecond), []byte(`{"id":"5","method":"silence"}`)); errors.Is(err, actors.ErrDuplicateID) {
		t.Fatal(`"5" was treated as the same id as 5`)
	}
	<-first
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	eventually(t, 2*time.Second, "two frames at the server", func() bool { return conns[0].ReceivedCount() >= 2 })
	time.Sleep(50 * time.Millisecond)
	if n := conns[0].ReceivedCount(); n != 2 {
		t.Fatalf("server received %d frames, want 2 (the duplicate must not be sent)", n)
	}
}

func TestTimeoutFreesTheSlotAndLateResponseIsDropped(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), actors.WithRequestTimeout(100*time.Millisecond), actors.WithHandler(box.handle))
	start := time.Now()
	_, err := c.Request(context.Background(), []byte(`{"jsonrpc":"2.0","id":9,"method":"silence"}`))
	if !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("Request without an answer = %v, want ErrTimeout", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("RequestTimeout of 100ms took %v", waited)
	}
	if c.Health().Pending != 0 {
		t.Fatal("a timed-out request still holds its slot")
	}
	// The slot is free at once: the same id can be used again.
	_, err = c.Request(ctxT(t, 50*time.Millisecond), []byte(`{"jsonrpc":"2.0","id":9,"method":"silence"}`))
	if !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a ctx shorter than RequestTimeout: %v", err)
	}
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	_ = conns[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":9,"result":"late"}`))
	_ = conns[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":12345,"result":"never asked"}`))
	in := box.next(t)
	if in.Kind != actors.KindResponse || !in.Unmatched || string(in.ID) != "12345" {
		t.Fatalf("handler got %+v, want only the never-issued id as unmatched", in)
	}
	if h := c.Health(); h.LateResponses != 1 {
		t.Fatalf("LateResponses = %d, want 1", h.LateResponses)
	}
}

func TestDisconnectFailsPendingAtOnce(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast()...)
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			_, err := c.Call(ctxT(t, 10*time.Second), "silence", nil)
			errs <- err
		}()
	}
	eventually(t, 2*time.Second, "three pending", func() bool { return c.Health().Pending == 3 })
	start := time.Now()
	waitServerConn(t, srv)
	srv.DropAll()
	for i := 0; i < 3; i++ {
		if err := <-errs; !errors.Is(err, actors.ErrDisconnected) {
			t.Fatalf("pending call after a drop = %v, want ErrDisconnected", err)
		}
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("pending calls failed only after %v", waited)
	}
}

func TestRequestBadInput(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	for _, msg := range []string{
		`not json`, `[1,2]`, `{"method":"add"}`, `{"id":null,"method":"add"}`, `{"id":1.5,"method":"add"}`,
		`{"id":{"a":1},"method":"add"}`, `{"id":[1],"method":"add"}`, `{"id":true,"method":"add"}`,
		`{"id":123456789012345678901234567890,"method":"add"}`, `{"id":1,"method":"add"`,
		`{"id":07,"method":"add"}`, `{"id":1,"method":"add","params":"\q"}`, "{\"id\":1,\"method\":\"add\",\"params\":\"\xfe\"}",
	} {
		if _, err := c.Request(ctxT(t, time.Second), []byte(msg)); !errors.Is(err, actors.ErrInvalidRequest) {
			t.Errorf("Request(%s) = %v, want ErrInvalidRequest", msg, err)
		}
	}
	if _, err := c.Call(ctxT(t, time.Second), "", nil); !errors.Is(err, actors.ErrInvalidRequest) {
		t.Errorf("Call with no method = %v", err)
	}
	if _, err := c.Call(ctxT(t, time.Second), "add", make(chan int)); !errors.Is(err, actors.ErrInvalidRequest) {
		t.Errorf("Call with unmarshalable params = %v", err)
	}
	if c.State() != actors.StateConnected || c.Health().Pending != 0 {
		t.Fatal("bad input touched the connection")
	}
}

func TestHostileInboundFrames(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), actors.WithHandler(box.handle))
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	frames := []struct {
		data string
		kind actors.InboundKind
	}{
		{`{"jsonrpc":"2.0","result":1}`, actors.KindJSON},                     // a response with no id
		{`{"id":{"x":1},"result":1}`, actors.KindResponse},                    // an id of the wrong type
		{`{"id":99999999999999999999999999,"result":1}`, actors.KindResponse}, // a huge id
		{`{"id":77,"error":"not an object"}`, actors.KindResponse},            // an error without a code
		{`{"id":1,`, actors.KindText},                                         // malformed JSON
		{`{"method":"subscription","params":{"channel":"never.subscribed"}}`, actors.KindNotification},
		{`{"method":"subscription","params":"not an object"}`, actors.KindNotification},
	}
	for _, f := range frames {
		_ = conns[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte(f.data))
		in := box.next(t)
		if in.Kind != f.kind || string(in.Data) != f.data {
			t.Fatalf("frame %s delivered as %v", f.data, in.Kind)
		}
	}
	_ = conns[0].Send(ctxT(t, time.Second), websocket.MessageBinary, []byte{0, 1})
	if in := box.next(t); in.Kind != actors.KindBinary {
		t.Fatalf("binary frame delivered as %v", in.Kind)
	}
	// An error object without a code still fails the call, as an *RPCError.
	srv.Handle("weird", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) { return nil, &wstest.RPCError{} })
	_, err := c.Call(ctxT(t, time.Second), "weird", nil)
	var rpcErr *actors.RPCError
	if !errors.As(err, &rpcErr) {
		t.Fatalf("an empty error object = %v, want *RPCError", err)
	}
	if c.State() != actors.StateConnected || c.Health().HandlerPanics != 0 {
		t.Fatal("hostile frames hurt the client")
	}
}

func TestConcurrentCallsMatchTheirResponses(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				res, err := c.Call(ctxT(t, 5*time.Second), "add", map[string]int{"a": g, "b": i})
				if err != nil || string(res) != fmt.Sprint(g+i) {
					errs <- fmt.Errorf("add(%d,%d) = %s, %v", g, i, res, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c.Health().Pending != 0 {
		t.Fatal("requests left pending")
	}
}

func TestClientIDsNeverCollideWithUserIDs(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithEcho(false))
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithHeartbeat(actors.HeartbeatDeribit, 20*time.Millisecond))
	// The user holds the small ids the client's own sequence would use next.
	errs := make(chan error, 5)
	for id := 1; id <= 5; id++ {
		go func(id int) {
			_, err := c.Request(ctxT(t, 300*time.Millisecond), []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"silence"}`, id)))
			errs <- err
		}(id)
	}
	for i := 0; i < 5; i++ {
		if err := <-errs; !errors.Is(err, actors.ErrTimeout) {
			t.Fatalf("a user request was answered by someone else's response: %v", err)
		}
	}
	if h := c.Health(); h.Generation != 1 || h.HeartbeatFailures != 0 || h.RTTSamples == 0 {
		t.Fatalf("heartbeats suffered from the user's ids: %+v", h)
	}
	if _, err := c.Call(ctxT(t, time.Second), "public/test", nil); err != nil {
		t.Fatalf("Call: %v", err)
	}
}

func TestErrorNullIsSuccessAndExpiredContextIsTimeout(t *testing.T) {
	srv := rpcServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.Request(ctxT(t, 2*time.Second), []byte(`{"jsonrpc":"2.0","id":5,"method":"silence"}`))
		done <- err
	}()
	eventually(t, 2*time.Second, "pending", func() bool { return c.Health().Pending == 1 })
	_ = conns[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte(`{"id":5,"result":{"ok":true},"error":null}`))
	if err := <-done; err != nil {
		t.Fatalf(`"error":null made the response an error: %v`, err)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	// A cancelled ctx is context.Canceled, not a timeout (issue 13).
	if _, err := c.Call(expired, "add", nil); errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Call with a cancelled context = %v, want context.Canceled and not ErrTimeout", err)
	}
}

func TestCloseDuringRestoreDoesNotHang(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	c, err := actors.Connect(ctxT(t, 5*time.Second), newSystem(t), srv.URL(), fast(func(c *actors.Config) { c.CloseWait = 3 * time.Second })...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctxT(t, 2*time.Second), "ticker.a", "user.orders.b"); err != nil {
		t.Fatal(err)
	}
	var slow sync.Once
	srv.Handle("public/subscribe", func(_ *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) {
		slow.Do(func() { time.Sleep(500 * time.Millisecond) })
		var v struct{ Channels []string }
		_ = json.Unmarshal(p, &v)
		return v.Channels, nil
	})
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "the restore under way", func() bool { return srv.TotalConns() == 2 })
	if err := c.Close(); err != nil {
		t.Fatalf("Close during a restore: %v", err)
	}
}
