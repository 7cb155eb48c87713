package actors_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

func TestRetryForeverIsValidatedAndDocumentedValue(t *testing.T) {
	if actors.RetryForever != -1 {
		t.Fatalf("RetryForever = %d, documented as -1", actors.RetryForever)
	}
	if _, err := actors.NewConfig("ws://x", actors.WithRetryCount(actors.RetryForever)); err != nil {
		t.Fatalf("RetryForever rejected: %v", err)
	}
	_, err := actors.NewConfig("ws://x", actors.WithRetryCount(-2))
	var ce *actors.ConfigError
	if !errors.As(err, &ce) || ce.Field != "RetryCount" {
		t.Fatalf("RetryCount -2 = %v, want a *ConfigError naming RetryCount", err)
	}
}

// A venue in maintenance (503) for many more attempts than any finite
// default: with RetryForever, Connect keeps trying with backoff until the
// venue is back, then returns a connected client; the client then keeps
// healing through a second, long outage without giving up or failing to a
// supervisor.
func TestRetryForeverOutlastsAMaintenance(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(503)
	const refusals = 4 * (1 + actors.DefaultRetryCount)
	type result struct {
		c   *actors.Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := actors.Connect(ctxT(t, 20*time.Second), newSystem(t), srv.URL(), fast(actors.WithRetryCount(actors.RetryForever))...)
		res <- result{c, err}
	}()
	eventually(t, 20*time.Second, "many refused first attempts", func() bool { return srv.RefusedHandshakes() >= refusals })
	srv.RefuseHandshakes(0)
	r := <-res
	if r.err != nil {
		t.Fatalf("Connect after the maintenance: %v", r.err)
	}
	c := r.c
	t.Cleanup(func() { _ = c.Close() })

	before := srv.RefusedHandshakes()
	srv.RefuseHandshakes(503)
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 20*time.Second, "many refused reconnects", func() bool { return srv.RefusedHandshakes()-before >= refusals })
	if h := c.Health(); h.State != actors.StateReconnecting || h.Restarts != 0 || h.StopReason != nil {
		t.Fatalf("during the outage: %v, %d restarts, stop reason %v; want reconnecting, never given up", h.State, h.Restarts, h.StopReason)
	}
	srv.RefuseHandshakes(0)
	if err := c.WaitConnected(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("not reconnected after the outage: %v", err)
	}
}

// Connect stays bounded by its ctx with RetryForever, returns the ctx's
// error with the last dial error, and leaves no actor behind.
func TestRetryForeverConnectIsBoundedByItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/"
	_ = ln.Close() // nothing listens: every dial is refused
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = actors.Connect(ctx, newSystem(t), url, fast(actors.WithRetryCount(actors.RetryForever))...)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want the ctx's deadline", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("Connect = %v, want the last dial error in it", err)
	}
}
