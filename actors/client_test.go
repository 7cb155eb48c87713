package actors_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
	"github.com/zenws/zenws/transport/wstest"
)

func TestConnectSendReceive(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	box := newInbox()
	c := connect(t, sys, srv.URL(), actors.WithHandler(box.handle))
	if c.State() != actors.StateConnected {
		t.Fatalf("State = %v after Connect", c.State())
	}
	cases := []struct {
		data    string
		kind    actors.InboundKind
		channel string
	}{
		{"plain text", actors.KindText, ""},
		{`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC","data":{"p":1}}}`, actors.KindNotification, "ticker.BTC"},
		{`{"jsonrpc":"2.0","id":99,"result":true}`, actors.KindResponse, ""},
		{`{"event":"x"}`, actors.KindJSON, ""},
	}
	for i, tc := range cases {
		if err := c.Send(ctxT(t, time.Second), []byte(tc.data)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		in := box.next(t)
		if string(in.Data) != tc.data || in.Kind != tc.kind || in.Channel != tc.channel || in.Generation != 1 || in.Seq != uint64(i+1) || !in.Client.Equal(c.PID()) {
			t.Fatalf("got %+v, want data %q kind %v channel %q gen 1 seq %d", in, tc.data, tc.kind, tc.channel, i+1)
		}
		if tc.kind == actors.KindResponse && (!in.Unmatched || string(in.ID) != "99") {
			t.Fatalf("unmatched response: %+v", in)
		}
	}
	if err := c.SendBinary(ctxT(t, time.Second), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if in := box.next(t); in.Kind != actors.KindBinary || !bytes.Equal(in.Data, []byte{1, 2, 3}) {
		t.Fatalf("binary: %+v", in)
	}
	h := c.Health()
	if h.MessagesOut != 5 || h.MessagesIn != 5 || h.Generation != 1 {
		t.Fatalf("Health counters: %+v", h)
	}
}

func TestSendRejectsInvalidUTF8(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	if err := c.Send(context.Background(), []byte{0xff}); !errors.Is(err, transport.ErrInvalidUTF8) {
		t.Fatalf("Send(invalid UTF-8) = %v", err)
	}
	if c.State() != actors.StateConnected {
		t.Fatal("a rejected send must not touch the connection")
	}
}

func TestReconnectsAfterAbruptDrop(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	box := newInbox()
	var connects atomic.Int32
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithHandler(box.handle),
		actors.WithOnConnect(func(*actor.PID) { connects.Add(1) }))...)
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "a second connection", func() bool {
		return srv.TotalConns() == 2 && c.State() == actors.StateConnected
	})
	h := c.Health()
	if h.Generation != 2 || h.Reconnects != 1 || h.LastError == nil {
		t.Fatalf("after reconnect: %+v", h)
	}
	eventually(t, 2*time.Second, "OnConnect twice", func() bool { return connects.Load() == 2 })
	if err := c.Send(ctxT(t, time.Second), []byte("after")); err != nil {
		t.Fatal(err)
	}
	if in := box.next(t); in.Generation != 2 || string(in.Data) != "after" {
		t.Fatalf("after reconnect got %+v", in)
	}
}

func TestCloseCodesReconnectWithTypedReason(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast()...)
	for i, code := range []websocket.StatusCode{1000, 1001, 1008, 1011, 3001, 4001} {
		eventually(t, 5*time.Second, "the server to list only the new connection", func() bool {
			return srv.TotalConns() == i+1 && srv.ConnCount() == 1
		})
		time.Sleep(2 * actors.MinStableAfter) // a stable connection: redialled, not counted
		srv.DisconnectAll(code, "server says")
		eventually(t, 5*time.Second, "reconnect", func() bool {
			return c.Health().Generation == uint64(i+2) && c.State() == actors.StateConnected
		})
		var ce *transport.CloseError
		if err := c.Health().LastError; !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("code %d: LastError = %v", code, err)
		}
	}
}

func TestHandshakeRefusals(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	for _, status := range []int{401, 403, 404} {
		srv.RefuseHandshakes(status)
		var disconnected atomic.Int32
		start := time.Now()
		_, err := actors.Connect(ctxT(t, 5*time.Second), sys, srv.URL(), actors.WithRetryDelay(time.Second), actors.WithMaxBackoff(time.Second),
			actors.WithOnDisconnect(func(*actor.PID) { disconnected.Add(1) }))
		var fe *actors.FatalError
		var he *transport.HandshakeError
		if !errors.As(err, &fe) || !errors.As(err, &he) || he.StatusCode != status {
			t.Fatalf("status %d: Connect = %v, want *FatalError with the status", status, err)
		}
		if waited := time.Since(start); waited > 900*time.Millisecond {
			t.Fatalf("status %d: a fatal handshake was retried (took %v)", status, waited)
		}
		eventually(t, 2*time.Second, "OnDisconnect", func() bool { return disconnected.Load() == 1 })
	}
	srv.RefuseHandshakes(503)
	_, err := actors.Connect(ctxT(t, 5*time.Second), sys, srv.URL(), fast(actors.WithRetryCount(2))...)
	var gu *actors.GiveUpError
	var he *transport.HandshakeError
	if !errors.As(err, &gu) || gu.Attempts != 3 || !errors.As(err, &he) || he.StatusCode != 503 {
		t.Fatalf("503: Connect = %v, want *GiveUpError after 3 attempts", err)
	}
}

func TestConnectErrors(t *testing.T) {
	sys := newSystem(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	bh := wstest.NewBlackhole()
	defer bh.Close()

	_, err = actors.Connect(ctxT(t, 5*time.Second), sys, refused, fast(actors.WithRetryCount(1))...)
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || gu.Attempts != 2 {
		t.Fatalf("refused port: %v, want *GiveUpError after 2 attempts", err)
	}

	_, err = actors.Connect(ctxT(t, 5*time.Second), sys, bh.URL(), fast(actors.WithRetryCount(0), actors.WithTimeout(150*time.Millisecond))...)
	if !errors.As(err, &gu) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v, want *GiveUpError over a handshake timeout", err)
	}

	_, err = actors.Connect(ctxT(t, 5*time.Second), sys, "ws://no-such-host.zenws.test/", func(c *actors.Config) { c.NetDial = testutil.NXDomainDialer(t) })
	var fe *actors.FatalError
	var dnsErr *net.DNSError
	if !errors.As(err, &fe) || !errors.As(err, &dnsErr) {
		t.Fatalf("unresolvable host: %v, want *FatalError over *net.DNSError", err)
	}

	// The caller's context bounds Connect and the last dial error is kept.
	_, err = actors.Connect(ctxT(t, 300*time.Millisecond), sys, refused, actors.WithRetryCount(100), actors.WithRetryDelay(50*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("ctx-bounded Connect = %v", err)
	}

	for _, bad := range []string{"", "http://x", "ws://", "not a url"} {
		if _, err := actors.Connect(context.Background(), sys, bad); !errors.As(err, new(*actors.ConfigError)) {
			t.Errorf("Connect(%q) = %v, want a *ConfigError", bad, err)
		}
	}
}

func TestOversizedAndInvalidFramesReconnect(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithReadLimit(1024))...)
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	_ = conns[0].Send(ctxT(t, time.Second), websocket.MessageBinary, make([]byte, 4096))
	eventually(t, 5*time.Second, "reconnect after oversized frame", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	if err := c.Health().LastError; !errors.Is(err, transport.ErrMessageTooBig) {
		t.Fatalf("LastError = %v", err)
	}
	conns, _ = srv.WaitConns(ctxT(t, 2*time.Second), 1)
	_ = conns[len(conns)-1].Send(ctxT(t, time.Second), websocket.MessageText, []byte{0xc3, 0x28})
	eventually(t, 5*time.Second, "reconnect after invalid UTF-8", func() bool { return c.Health().Generation == 3 && c.State() == actors.StateConnected })
	if err := c.Health().LastError; !errors.Is(err, transport.ErrInvalidUTF8) {
		t.Fatalf("LastError = %v", err)
	}
	if code, _ := conns[len(conns)-1].CloseReason(); code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("server saw close %v, want 1007", code)
	}
}

func TestSendWhileReconnectingAndAfterClose(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	var disconnects atomic.Int32
	c := connect(t, newSystem(t), srv.URL(), actors.WithRetryDelay(10*time.Second), actors.WithMaxBackoff(10*time.Second),
		actors.WithOnDisconnect(func(*actor.PID) { disconnects.Add(1) }))
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnecting", func() bool { return c.State() == actors.StateReconnecting })
	start := time.Now()
	if err := c.Send(ctxT(t, time.Second), []byte("x")); !errors.Is(err, actors.ErrNotConnected) {
		t.Fatalf("Send while reconnecting = %v", err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("Send while reconnecting waited")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, actors.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if err := c.Send(context.Background(), []byte("x")); !errors.Is(err, actors.ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
	if err := c.Reconnect(context.Background()); !errors.Is(err, actors.ErrClosed) {
		t.Fatalf("Reconnect after Close = %v", err)
	}
	if c.State() != actors.StateDisconnected {
		t.Fatalf("State after Close = %v", c.State())
	}
	eventually(t, time.Second, "OnDisconnect once", func() bool { return disconnects.Load() == 1 })
}

func TestCloseSendsNormalClosure(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-conns[0].Done()
	if code, _ := conns[0].CloseReason(); code != websocket.StatusNormalClosure {
		t.Fatalf("server saw %v", code)
	}
	time.Sleep(50 * time.Millisecond)
	if srv.TotalConns() != 1 {
		t.Fatal("a closed client reconnected")
	}
}

func TestGivesUpAndStopsWithoutSupervisor(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	var disconnects atomic.Int32
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithRetryCount(2), actors.WithOnDisconnect(func(*actor.PID) { disconnects.Add(1) }))...)
	srv.RefuseHandshakes(503)
	waitServerConn(t, srv)
	time.Sleep(2 * actors.MinStableAfter) // stable: the reconnect attempts start anew
	srv.DropAll()
	eventually(t, 5*time.Second, "the client to give up", func() bool { return c.State() == actors.StateDisconnected })
	var gu *actors.GiveUpError
	if err := c.Health().LastError; !errors.As(err, &gu) || gu.Attempts != 2 {
		t.Fatalf("LastError = %v", err)
	}
	eventually(t, time.Second, "OnDisconnect", func() bool { return disconnects.Load() == 1 })
	if err := c.Send(context.Background(), []byte("x")); !errors.Is(err, actors.ErrClosed) {
		t.Fatalf("Send after giving up = %v", err)
	}
}

func TestReconnectOnErrorOff(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithReconnectOnError(false))
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "stop", func() bool { return c.State() == actors.StateDisconnected })
	time.Sleep(50 * time.Millisecond)
	if srv.TotalConns() != 1 {
		t.Fatal("reconnected although reconnecting is off")
	}
}

func TestExplicitReconnect(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	if err := c.Reconnect(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if h := c.Health(); h.Generation != 2 || h.State != actors.StateConnected {
		t.Fatalf("after Reconnect: %+v", h)
	}
	eventually(t, 2*time.Second, "the server to see the second connection", func() bool { return srv.TotalConns() == 2 })
}

func TestOnlyOneDialAtATime(t *testing.T) {
	// Every dial to a blackhole hangs for the whole handshake timeout, so
	// a second concurrent dial would show up as a second accepted TCP
	// connection while the first still hangs.
	bh := wstest.NewBlackhole()
	defer bh.Close()
	sys := newSystem(t)
	cfg, err := actors.NewConfig(bh.URL(), actors.WithTimeout(3*time.Second), actors.WithRetryCount(5))
	if err != nil {
		t.Fatal(err)
	}
	c := actors.NewClient(sys, sys.Root.Spawn(actors.Props(cfg)))
	defer c.Close()
	if err := bh.WaitAccepted(ctxT(t, 2*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() { errs <- c.Reconnect(ctxT(t, 300*time.Millisecond)) }()
	}
	for i := 0; i < 10; i++ {
		if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Reconnect against a blackhole = %v", err)
		}
	}
	if n := bh.Accepted(); n != 1 {
		t.Fatalf("%d dials reached the server while the first still hung, want 1", n)
	}
}

func TestBackpressureOverflowIsCountedAndVisible(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	release := make(chan struct{})
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), actors.WithInboundQueue(4, 0, actors.DropNewest), actors.WithHandler(func(in actors.Inbound) {
		<-release
		box.handle(in)
	}))
	for i := 0; i < 20; i++ {
		if err := c.Send(ctxT(t, time.Second), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	// At most one message in the blocked handler and four waiting: the rest
	// are dropped, counted, and never block the connection.
	eventually(t, 5*time.Second, "all 20 accounted for", func() bool {
		h := c.Health()
		return h.InboundDropped+uint64(h.InboundQueued)+1 == 20
	})
	h := c.Health()
	if h.State != actors.StateConnected || h.InboundQueued > 4 || h.InboundDropped < 15 {
		t.Fatalf("with a stuck handler: %+v", h)
	}
	kept := int(20 - h.InboundDropped)
	close(release)
	eventually(t, 5*time.Second, "the kept messages", func() bool { return len(box.all()) == kept })
	got := box.all()
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("delivered out of order: %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
	// The next message after the gap carries a Seq that shows it.
	if err := c.Send(ctxT(t, time.Second), []byte("after the gap")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the message after the gap", func() bool { return len(box.all()) == kept+1 })
	// Seq numbers 1..20 minus those delivered are exactly the dropped ones.
	if after := box.all()[kept]; after.Seq != 21 || string(after.Data) != "after the gap" {
		t.Fatalf("after the gap: Seq %d %q, want Seq 21: the gap must be visible", after.Seq, after.Data)
	}
}

func TestHandlerPanicKeepsConnection(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	box := newInbox()
	core, logs := observer.New(zap.ErrorLevel)
	c := connect(t, newSystem(t), srv.URL(), actors.WithLogger(zap.New(core)), actors.WithHandler(func(in actors.Inbound) {
		if string(in.Data) == "boom" {
			panic("handler bug")
		}
		box.handle(in)
	}))
	_ = c.Send(ctxT(t, time.Second), []byte("boom"))
	_ = c.Send(ctxT(t, time.Second), []byte("fine"))
	if in := box.next(t); string(in.Data) != "fine" {
		t.Fatalf("got %q", in.Data)
	}
	if h := c.Health(); h.HandlerPanics != 1 || h.State != actors.StateConnected || h.Generation != 1 {
		t.Fatalf("after a handler panic: %+v", h)
	}
	if logs.FilterMessageSnippet("panicked").Len() != 1 {
		t.Fatal("the handler panic was not logged")
	}
}

type collector struct{ got chan *actors.Inbound }

func (c *collector) Receive(ctx actor.Context) {
	if in, ok := ctx.Message().(*actors.Inbound); ok {
		c.got <- in
	}
}

func TestSubscriberPID(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	col := &collector{got: make(chan *actors.Inbound, 100)}
	sub := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return col }))
	defer sys.Root.Stop(sub)
	c := connect(t, sys, srv.URL(), actors.WithSubscriber(sub))
	for _, m := range []string{"a", "b", "c"} {
		_ = c.Send(ctxT(t, time.Second), []byte(m))
	}
	for i, want := range []string{"a", "b", "c"} {
		select {
		case in := <-col.got:
			if string(in.Data) != want || in.Seq != uint64(i+1) {
				t.Fatalf("subscriber got %q seq %d, want %q seq %d", in.Data, in.Seq, want, i+1)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("subscriber got nothing")
		}
	}
}

func TestDeadSubscriberIsCounted(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	sub := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	c := connect(t, sys, srv.URL(), actors.WithSubscriber(sub))
	if err := sys.Root.StopFuture(sub).Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	_ = c.Send(ctxT(t, time.Second), []byte("nobody listens"))
	eventually(t, 5*time.Second, "the drop counted", func() bool { return c.Health().InboundDropped == 1 })
	if c.State() != actors.StateConnected {
		t.Fatal("a dead subscriber took the connection down")
	}
}

// parent is a user's own actor that spawns a client with actors.Props
// under itself; its supervisor strategy (if any) decides restarts.
type parent struct {
	cfg   actors.Config
	child chan *actor.PID
}

func (p *parent) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		p.child <- ctx.Spawn(actors.Props(p.cfg))
	}
}

func TestPropsUnderOwnParentAndNewClient(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	box := newInbox()
	cfg, err := actors.NewConfig(srv.URL(), actors.WithHandler(box.handle))
	if err != nil {
		t.Fatal(err)
	}
	p := &parent{cfg: cfg, child: make(chan *actor.PID, 1)}
	ppid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
	c := actors.NewClient(sys, <-p.child)
	eventually(t, 5*time.Second, "the child to connect", func() bool { return c.State() == actors.StateConnected })
	if err := c.Send(ctxT(t, time.Second), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if in := box.next(t); string(in.Data) != "hi" {
		t.Fatalf("got %q", in.Data)
	}
	if err := sys.Root.StopFuture(ppid).Wait(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the child to stop with its parent", func() bool { return c.State() == actors.StateDisconnected })
	if err := actors.NewClient(sys, actor.NewPID("nonhost", "nobody")).Send(context.Background(), []byte("x")); !errors.Is(err, actors.ErrNotFound) {
		t.Fatalf("Send via a handle on an unknown PID = %v", err)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	core, logs := observer.New(zap.DebugLevel)
	c := connect(t, newSystem(t), srv.URL()+"ws?listenKey=QUERYSECRET", fast(actors.WithLogger(zap.New(core)),
		actors.WithHeaders(http.Header{"X-Api-Key": {"HEADERSECRET"}}))...)
	srv.RefuseHandshakes(401)
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "stop on 401", func() bool { return c.State() == actors.StateDisconnected })
	if logs.Len() == 0 {
		t.Fatal("nothing was logged")
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		if strings.Contains(line, "QUERYSECRET") || strings.Contains(line, "HEADERSECRET") {
			t.Fatalf("a secret reached the log: %s", line)
		}
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case error:
		return x.Error()
	}
	return ""
}

func TestTLSCertificateVerifiedByDefault(t *testing.T) {
	srv := wstest.NewTLSServer()
	defer srv.Close()
	sys := newSystem(t)
	_, err := actors.Connect(ctxT(t, 5*time.Second), sys, srv.URL())
	var fe *actors.FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("self-signed server: %v, want *FatalError", err)
	}
	c := connect(t, sys, srv.URL(), actors.WithTLSConfig(srv.ClientTLSConfig()))
	if c.State() != actors.StateConnected {
		t.Fatal("not connected with the server's CA")
	}
}

func TestActorSystemLoggerRoutesProtoActorLogs(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.New(core)))
	defer sys.Shutdown()
	sys.Logger().Info("hello from proto.actor")
	if logs.FilterMessage("hello from proto.actor").Len() != 1 {
		t.Fatalf("proto.actor's log line did not reach zap: %v", logs.All())
	}
}

func TestStalledPeerFailsWriteAndReconnects(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast(func(c *actors.Config) { c.WriteTimeout = 200 * time.Millisecond })...)
	conns, _ := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	conns[0].Stall()
	big := bytes.Repeat([]byte("x"), 1<<20)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		err = c.SendBinary(context.Background(), big)
	}
	if !errors.Is(err, actors.ErrDisconnected) || !errors.Is(err, transport.ErrWriteTimeout) {
		t.Fatalf("Send to a stalled peer = %v, want ErrDisconnected over ErrWriteTimeout", err)
	}
	eventually(t, 5*time.Second, "reconnect after the write timeout", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	if err := c.Health().LastError; !errors.Is(err, transport.ErrWriteTimeout) {
		t.Fatalf("LastError = %v", err)
	}
}

func TestCloseFromInsideTheHandler(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	closed := make(chan error, 1)
	var c *actors.Client
	ready := make(chan struct{})
	c = connect(t, newSystem(t), srv.URL(), actors.WithHandler(func(actors.Inbound) {
		<-ready
		closed <- c.Close()
	}))
	close(ready)
	_ = c.Send(ctxT(t, time.Second), []byte("close yourself"))
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from the handler = %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close from the handler hung")
	}
}

func TestReconnectReportsFatalError(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	srv.RefuseHandshakes(401)
	err := c.Reconnect(ctxT(t, 5*time.Second))
	var fe *actors.FatalError
	var he *transport.HandshakeError
	if !errors.As(err, &fe) || !errors.As(err, &he) || he.StatusCode != 401 {
		t.Fatalf("Reconnect against a 401 = %v, want *FatalError", err)
	}
}

func TestStopDuringDialLeavesNoConnection(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	cfg, err := actors.NewConfig(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		c := actors.NewClient(sys, sys.Root.Spawn(actors.Props(cfg)))
		for c.Close() == actors.ErrNotFound { // not started yet
			time.Sleep(time.Millisecond)
		}
	}
	eventually(t, 5*time.Second, "every server connection to end", func() bool { return srv.ConnCount() == 0 })
}

// slowSubscriber takes a while per message.
type slowSubscriber struct{ got chan *actors.Inbound }

func (s *slowSubscriber) Receive(ctx actor.Context) {
	if in, ok := ctx.Message().(*actors.Inbound); ok {
		time.Sleep(2 * time.Millisecond)
		s.got <- in
	}
}

func TestSubscriberWithBoundedMailboxHitsTheOverflowPolicy(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	sub := &slowSubscriber{got: make(chan *actors.Inbound, 1000)}
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return sub }, actor.WithMailbox(actor.Bounded(4))))
	defer sys.Root.Stop(pid)
	c := connect(t, sys, srv.URL(), actors.WithSubscriber(pid), actors.WithInboundQueue(8, 0, actors.DropNewest))
	for i := 0; i < 200; i++ {
		if err := c.Send(ctxT(t, time.Second), []byte("tick")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "every message delivered or counted", func() bool {
		h := c.Health()
		return h.MessagesIn == 200 && uint64(len(sub.got))+h.InboundDropped == 200
	})
	if c.Health().InboundDropped == 0 {
		t.Fatal("a slow subscriber with a bounded mailbox never hit the overflow policy")
	}
}
