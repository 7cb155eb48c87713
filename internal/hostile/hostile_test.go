package hostile_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// The server's handshake and frames are good enough for a real client,
// and it captures what the client sent, unmasked.
func TestHandshakeFramesAndCapture(t *testing.T) {
	got := make(chan hostile.ReadFrame, 4)
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		_ = c.WriteFrame(false, hostile.OpText, false, []byte("hel"))
		_ = c.WriteFrame(true, hostile.OpContinuation, false, []byte("lo"))
		f, err := c.ReadFrame()
		if err == nil {
			got <- f
		}
		_ = c.WriteClose(4001, "bye")
		f, err = c.ReadUntilClose()
		if err == nil {
			got <- f
		}
	})
	ctx := testutil.Context(t, 5*time.Second)
	ws, _, err := websocket.Dial(ctx, srv.URL(), &websocket.DialOptions{HTTPHeader: http.Header{"X-Probe": {"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, data, err := ws.Read(ctx); err != nil || string(data) != "hello" {
		t.Fatalf("Read = %q, %v", data, err)
	}
	if err := ws.Write(ctx, websocket.MessageBinary, []byte("from client")); err != nil {
		t.Fatal(err)
	}
	if f := <-got; !f.Masked || f.Opcode != hostile.OpBinary || string(f.Payload) != "from client" {
		t.Fatalf("captured %+v", f)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != 4001 {
		t.Fatalf("Read after the server's close = %v", err)
	}
	if f := <-got; f.CloseCode() != 4001 {
		t.Fatalf("client echoed close %d", f.CloseCode())
	}
	if r := srv.Requests(); len(r) != 1 || r[0].Header.Get("X-Probe") != "1" {
		t.Fatalf("captured requests %v", r)
	}
}

func TestAcceptAndDropAndRedirect(t *testing.T) {
	srv := hostile.NewServer(t, hostile.AcceptAndDrop(10*time.Millisecond))
	ctx := testutil.Context(t, 5*time.Second)
	ws, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err == nil {
		t.Fatal("read after the drop succeeded")
	}
	red := hostile.NewServer(t, hostile.Redirect(http.StatusFound, "http://127.0.0.1:1/"))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+red.Addr()+"/", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://127.0.0.1:1/" {
		t.Fatalf("redirect answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestPingFloodAndClose(t *testing.T) {
	srv := hostile.NewServer(t, hostile.PingFlood(0))
	ctx := testutil.Context(t, 5*time.Second)
	pings := 0
	ws, _, err := websocket.Dial(ctx, srv.URL(), &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool { pings++; return false }})
	if err != nil {
		t.Fatal(err)
	}
	readCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, _, _ = ws.Read(readCtx)
	_ = ws.CloseNow()
	if pings < 10 {
		t.Fatalf("%d pings in 200ms", pings)
	}
	srv.Close() // ends the flood; Close again (Cleanup) is a no-op
}
