package reviewfailover

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// resetOnWrite is a net.Conn whose next Write, once armed, finds the
// connection reset: nothing written, ECONNRESET (what a write right after
// the peer's RST gets, before the reader has seen it). The socket itself
// is left to the transport to close, as after a real ECONNRESET.
type resetOnWrite struct {
	net.Conn
	armed *atomic.Bool
}

func (c resetOnWrite) Write(p []byte) (int, error) {
	if c.armed.Load() {
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return c.Conn.Write(p)
}

// Finding 7. An order is on the wire, waiting for its answer, when another
// write on the same connection fails before any of its bytes left
// (transport.ErrNotSent: a write that met the peer's reset first). The
// connection's cause is that write's error, and the order fails with
// "zenws: disconnected: transport: message not sent: ...": errors.Is(err,
// transport.ErrNotSent) is true for an order that reached the venue. The
// guide names transport.ErrNotSent as "provably nothing was sent"; a user
// who checks it resends the order.
func TestFinding7InFlightOrderSaysNotSent(t *testing.T) {
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	v := &venue{behave: func(f frame) {
		if strings.Contains(string(f.data), "private/buy") {
			got <- struct{}{}
			<-release
		}
	}}
	var armed atomic.Bool
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return resetOnWrite{Conn: c, armed: &armed}, nil
	}
	p := newPool(t, 1, v, []actors.Option{
		actors.WithRetryCount(actors.RetryForever),
		actors.Option(func(c *actors.Config) { c.NetDial = dial }),
	})
	errc := make(chan error, 1)
	go func() {
		_, err := p.b.Call(testutil.Context(t, 10*time.Second), "private/buy", map[string]any{"label": "ns-1"})
		errc <- err
	}()
	<-got // the order reached the venue
	armed.Store(true)
	serr := p.clients[0].Send(testutil.Context(t, 5*time.Second), []byte(`{"jsonrpc":"2.0","method":"public/hello"}`))
	if !errors.Is(serr, transport.ErrNotSent) || !errors.Is(serr, actors.ErrNotConnected) {
		t.Fatalf("the failing write: %v; want ErrNotConnected wrapping transport.ErrNotSent (the test's premise)", serr)
	}
	err := <-errc
	armed.Store(false)
	noSecret(t, err)
	if !errors.Is(err, actors.ErrDisconnected) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("order: %v; want ErrDisconnected", err)
	}
	if v.count("private/buy") != 1 {
		t.Fatalf("the order was sent %d times", v.count("private/buy"))
	}
	if errors.Is(err, transport.ErrNotSent) || strings.Contains(err.Error(), "not sent") {
		t.Errorf("an order that reached the venue fails with an error that says it was not sent: %v (errors.Is transport.ErrNotSent: %v)", err, errors.Is(err, transport.ErrNotSent))
	}
}
