package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/transport/wstest"
)

// 12 SUBSCRIBEs through ratelimit.Binance(): the simulator never receives
// more than 5 in any second (before: 6 within 200 ms, 9 in one second).
func TestBinanceRateLimitAgainstSimulator(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false), wstest.WithResponder("SUBSCRIBE", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		return nil, nil
	}))
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithVenue(binance.Venue{}), // its limiter: ratelimit.Binance()
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	for i := range 12 {
		if err := c.Subscribe(ctxT(t, 5*time.Second), fmt.Sprintf("s%d@trade", i)); err != nil {
			t.Fatalf("SUBSCRIBE %d: %v", i+1, err)
		}
	}
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	got := conns[0].Received()
	if len(got) != 12 {
		t.Fatalf("the server received %d messages, want 12", len(got))
	}
	for j := range got {
		n := 0
		for i := j; i >= 0 && got[j].At.Sub(got[i].At) <= time.Second; i-- {
			n++
		}
		if n > ratelimit.BinanceMessagesPerSecond {
			t.Fatalf("%d SUBSCRIBEs arrived within one second (ending with the %dth)", n, j+1)
		}
	}
	if h := c.Health(); h.RateLimitWaits < 2 || h.Generation != 1 {
		t.Fatalf("health: %d rate-limit waits, generation %d", h.RateLimitWaits, h.Generation)
	}
}

// answer waits for the client's request to be pending, then sends resp as
// the server's raw answer.
func answer(t *testing.T, c *actors.Client, srv *wstest.Server, req, resp string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := c.Request(ctxT(t, 3*time.Second), []byte(req))
		done <- err
	}()
	conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "the request pending", func() bool { return c.Health().Pending == 1 })
	if err := conns[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte(resp)); err != nil {
		t.Fatal(err)
	}
	return <-done
}

// Binance spells an error's text "msg": {"error":{"code":2,"msg":"..."}}.
// Before, RPCError.Message was empty and Error() said nothing.
func TestRPCErrorReadsBinanceMsg(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false))
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithSecrets("s3cr3tKey"))
	err := answer(t, c, srv, `{"method":"SUBSCRIBE","params":["nosuch@x"],"id":7}`,
		`{"error":{"code":2,"msg":"Invalid request: unknown stream nosuch@x"},"id":7}`)
	var rpc *actors.RPCError
	if !errors.As(err, &rpc) || rpc.Code != 2 || rpc.Message != "Invalid request: unknown stream nosuch@x" {
		t.Fatalf("err %#v, want code 2 with Binance's msg", err)
	}
	if !strings.Contains(err.Error(), "unknown stream nosuch@x") {
		t.Fatalf("Error() = %q: the venue's text is lost", err)
	}
	// The text is still redacted in Error(), raw in the field.
	err = answer(t, c, srv, `{"method":"SUBSCRIBE","params":[],"id":8}`,
		`{"error":{"code":-1022,"msg":"Signature for this request is not valid: s3cr3tKey"},"id":8}`)
	if !errors.As(err, &rpc) || !strings.Contains(rpc.Message, "s3cr3tKey") || strings.Contains(err.Error(), "s3cr3tKey") || !strings.Contains(err.Error(), "Signature") {
		t.Fatalf("Message %q, Error() %q: want the raw field and a redacted text", rpc.Message, err)
	}
	// "message" wins over "msg" when both are there, even empty.
	err = answer(t, c, srv, `{"method":"x","id":9}`, `{"error":{"code":5,"message":"","msg":"other"},"id":9}`)
	if !errors.As(err, &rpc) || rpc.Message != "" {
		t.Fatalf("err %#v: message is present, msg must not replace it", err)
	}
}

// Binance's combined streams wrap events as {"stream":name,"data":event}:
// with the Binance venue the handler gets the stream as Channel (before:
// KindJSON, no Channel), also for streams named in the URL.
func TestBinanceCombinedStreamSetsChannel(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false))
	defer srv.Close()
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), actors.WithVenue(binance.Venue{}), actors.WithHandler(box.handle))
	conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{
		`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1}}`,
		`{"stream":"not a wrapper"}`,
	} {
		if err := conns[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if in := box.next(t); in.Kind != actors.KindNotification || in.Channel != "btcusdt@trade" {
		t.Fatalf("combined-stream event: kind %v channel %q", in.Kind, in.Channel)
	}
	if in := box.next(t); in.Kind != actors.KindJSON || in.Channel != "" {
		t.Fatalf("an object with stream but no data: kind %v channel %q", in.Kind, in.Channel)
	}
	if h := c.Health(); h.Notifications != 1 {
		t.Fatalf("Health.Notifications = %d, want 1", h.Notifications)
	}
}

// A cancelled ctx is not a timeout: before, Call said "no response after
// 50ms ... timeout" and matched ErrTimeout. A deadline (the caller's or
// RequestTimeout) matches both ErrTimeout and context.DeadlineExceeded.
func TestCancelledRequestIsNotATimeout(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false)) // never answers
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithRequestTimeout(300*time.Millisecond))

	cctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Call(cctx, "silence", nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, actors.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled while waiting: %v; want context.Canceled and not ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "cancelled") || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("text %q: must say cancelled, not timeout", err)
	}

	cause := errors.New("shutting down")
	cctx2, cancel2 := context.WithCancelCause(context.Background())
	cancel2(cause)
	if _, err := c.Call(cctx2, "silence", nil); !errors.Is(err, context.Canceled) || !errors.Is(err, cause) || errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("already cancelled with a cause: %v", err)
	}
	if err := c.Subscribe(cctx2, "ticker.x"); !errors.Is(err, context.Canceled) || errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("Subscribe with a cancelled ctx: %v", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if _, err := c.Call(dctx, "silence", nil); !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller's deadline: %v; want ErrTimeout and context.DeadlineExceeded", err)
	}
	if _, err := c.Call(context.Background(), "silence", nil); !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RequestTimeout: %v; want ErrTimeout and context.DeadlineExceeded", err)
	}
	if _, err := c.Call(dctx, "silence", nil); !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("a ctx past its deadline: %v", err)
	}
}

// A first connect with RetryCount 2 makes 3 dials; before, the error said
// "gave up after 3 reconnect attempts".
func TestGiveUpErrorSaysWhatTheAttemptsWere(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(503)
	_, err := actors.Connect(ctxT(t, 10*time.Second), newSystem(t), srv.URL(), fast(actors.WithRetryCount(2))...)
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || gu.Attempts != 3 || !gu.FirstConnect {
		t.Fatalf("Connect = %v, want a GiveUpError of the first connect's 3 dials", err)
	}
	if text := err.Error(); !strings.Contains(text, "gave up connecting after 3 dial attempts (the first and 2 retries)") || strings.Contains(text, "reconnect") {
		t.Fatalf("text %q", text)
	}
	if srv.RefusedHandshakes() != 3 {
		t.Fatalf("the server refused %d handshakes, want 3", srv.RefusedHandshakes())
	}

	// After a stable connection is lost, the attempts are reconnects.
	srv2 := wstest.NewServer()
	defer srv2.Close()
	c := connect(t, newSystem(t), srv2.URL(), fast(actors.WithRetryCount(2))...)
	waitServerConn(t, srv2)
	srv2.RefuseHandshakes(503)
	time.Sleep(2 * actors.MinStableAfter) // stable: the reconnect attempts start anew
	srv2.DropAll()
	eventually(t, 5*time.Second, "the client to give up", func() bool { return c.State() == actors.StateDisconnected })
	err = c.Health().LastError
	if !errors.As(err, &gu) || gu.Attempts != 2 || gu.FirstConnect {
		t.Fatalf("LastError = %v", err)
	}
	if !strings.Contains(err.Error(), "gave up after 2 reconnect attempts") {
		t.Fatalf("text %q", err)
	}
}

// recordOf returns the records of a recording file.
func recordOf(t *testing.T, path string) []record.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []record.Record
	if err := record.Replay(f, func(r record.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Outbound frames are recorded with the generation of the connection they
// were written on: a recording says on which connection an order left
// (before: gen was absent from every "out" record). Connect-time traffic
// (auth on a new connection, before it is published) carries its own.
func TestRecordedOutboundFramesCarryTheirGeneration(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false), wstest.WithResponder("private/buy", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		return map[string]any{"order": map[string]string{"order_id": "o1"}}, nil
	}), wstest.WithResponder("public/auth", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		return map[string]any{"access_token": "t"}, nil
	}), wstest.WithResponder("public/subscribe", func(_ *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) {
		var v struct{ Channels []string }
		_ = json.Unmarshal(p, &v)
		return v.Channels, nil
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "orders.jsonl")
	hook := actors.WithConnectHook(func(ctx context.Context, s *actors.Setup) error {
		_, err := s.Call(ctx, "public/auth", map[string]any{"grant_type": "client_credentials"})
		return err
	})
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithRecordFile(path), hook, actors.WithHeartbeat(actors.HeartbeatDisabled, 0))...)
	buy := func(label string) {
		if _, err := c.Call(ctxT(t, 2*time.Second), "private/buy", map[string]string{"label": label}); err != nil {
			t.Fatalf("buy %s: %v", label, err)
		}
	}
	if err := c.Subscribe(ctxT(t, 2*time.Second), "ticker.BTC"); err != nil {
		t.Fatal(err)
	}
	buy("first")
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnected", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	buy("second")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{`"first"`: 1, `"second"`: 2}
	auths, subs := map[uint64]int{}, map[uint64]int{}
	for _, r := range recordOf(t, path) {
		if r.Dir != record.DirOut {
			continue
		}
		if r.Generation == 0 {
			t.Fatalf("an outbound record without its generation: %+v", r)
		}
		if strings.Contains(r.Data, "public/auth") {
			auths[r.Generation]++
		}
		if strings.Contains(r.Data, "public/subscribe") {
			subs[r.Generation]++ // the restore on connection 2
		}
		for label, gen := range want {
			if strings.Contains(r.Data, label) {
				if r.Generation != gen {
					t.Fatalf("order %s recorded on connection %d, it left on %d", label, r.Generation, gen)
				}
				delete(want, label)
			}
		}
	}
	if len(want) != 0 || auths[1] != 1 || auths[2] != 1 || subs[1] != 1 || subs[2] != 1 {
		t.Fatalf("orders not found %v; public/auth per connection %v, public/subscribe %v", want, auths, subs)
	}
	// A recording from before (no gen on "out") still reads.
	old := `{"t":"2026-11-22T00:00:00Z","dir":"out","data":"{\"method\":\"private/buy\"}"}` + "\n" +
		`{"t":"2026-11-22T00:00:01Z","dir":"in","data":"{}","gen":1}` + "\n"
	sum, err := record.Summarize(strings.NewReader(old))
	if err != nil || sum.Out != 1 || sum.In != 1 {
		t.Fatalf("an old recording: %+v, %v", sum, err)
	}
}
