package review14

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/hostile"
	"github.com/zenws/zenws/transport"
)

// The peer floods pings while 32 writers stream messages of mixed sizes
// (pongs join open batches): every data frame it reads is intact and
// unfragmented, every pong echoes a ping, and every Write that returned nil
// arrived once.
func TestPingFloodDuringBatches(t *testing.T) {
	results := make(chan *received, 1)
	var pongs, badPongs atomic.Int64
	srv := hostile.NewServer(t, func(c *hostile.Conn) {
		if c.Handshake() != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		stopPing := make(chan struct{})
		pingDone := make(chan struct{})
		go func() {
			defer close(pingDone)
			ping := hostile.Frame(true, hostile.OpPing, false, []byte("flood-ping"))
			for {
				select {
				case <-stopPing:
					return
				default:
				}
				if c.WriteRaw(ping) != nil {
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
		}()
		r := newReceived()
		defer func() { close(stopPing); <-pingDone; results <- r }()
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			if f.Opcode == hostile.OpPong {
				pongs.Add(1)
				if string(f.Payload) != "flood-ping" {
					badPongs.Add(1)
				}
				continue
			}
			r.add(t, f)
			if f.Opcode == hostile.OpClose {
				close(stopPing)
				<-pingDone
				stopPing = make(chan struct{})
				_ = c.WriteClose(1000, "")
				return
			}
		}
	})
	c := dialT(t, srv.URL(), transport.Options{})
	rerr := readAll(c)
	stop := make(chan struct{})
	outCh := make(chan []outcome, 1)
	go func() { outCh <- writers(c, 32, []int{8, 120, 5000, 300 << 10, 33}, stop) }()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	out := <-outCh
	if err := c.Close(1000, ""); err != nil {
		t.Errorf("Close: %v", err)
	}
	<-rerr
	var r *received
	select {
	case r = <-results:
	case <-time.After(30 * time.Second):
		t.Fatal("peer did not finish")
	}
	for _, o := range out {
		if o.err != nil {
			t.Errorf("%s: %v (the peer read everything)", o.tag, o.err)
		}
	}
	check(t, out, r, true)
	t.Logf("pongs %d (bad %d)", pongs.Load(), badPongs.Load())
	if badPongs.Load() != 0 {
		t.Errorf("%d pongs with a wrong payload", badPongs.Load())
	}
}

// Over TLS: the peer reads some frames, then resets. ErrNotSent only for
// messages it did not get.
func TestResetMidBatchTLS(t *testing.T) {
	for round := 0; round < 6; round++ {
		results := make(chan *received, 1)
		after := 40 + round*53
		srv := hostile.NewTLSServer(t, func(c *hostile.Conn) {
			if c.Handshake() != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			r := newReceived()
			for i := 0; i < after; i++ {
				f, err := c.ReadFrame()
				if err != nil {
					break
				}
				r.add(t, f)
			}
			var raw net.Conn = c.Conn
			if tc, ok := raw.(interface{ NetConn() net.Conn }); ok {
				raw = tc.NetConn()
			}
			if tc, ok := raw.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = raw.Close()
			results <- r
		})
		c := dialT(t, srv.URL(), transport.Options{WriteTimeout: 5 * time.Second, TLSConfig: srv.ClientTLSConfig()})
		rerr := readAll(c)
		stop := make(chan struct{})
		out := writers(c, 32, []int{10, 100, 1000, 200 << 10, 20, 60 << 10}, stop)
		var r *received
		select {
		case r = <-results:
		case <-time.After(30 * time.Second):
			t.Fatal("peer did not finish")
		}
		close(stop)
		check(t, out, r, false)
		_ = c.CloseNow()
		if err := <-rerr; err == nil || errors.Is(err, nil) {
			_ = err
		}
		srv.Close()
	}
}
