package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/coder/websocket"
)

// echoServer is a TCP server that writes back what it reads.
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newEchoServer(t *testing.T) *echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns = append(e.conns, c)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	return e
}

func (e *echoServer) close() {
	_ = e.ln.Close()
	e.mu.Lock()
	for _, c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// proxied is a connection through a fresh proxy to a fresh echo server,
// with the toxics given on it from the start.
func proxied(t *testing.T, n *network, name string, toxics ...toxic) net.Conn {
	t.Helper()
	echo := newEchoServer(t)
	t.Cleanup(echo.close)
	p := toxiproxy.NewProxy(n.api, name, "127.0.0.1:0", echo.ln.Addr().String())
	if err := n.api.Collection.Add(p, true); err != nil {
		t.Fatal(err)
	}
	v := &venue{net: n, name: name, proxy: p}
	for _, tx := range toxics {
		if err := v.addToxic(tx); err != nil {
			t.Fatal(err)
		}
	}
	p.Lock()
	addr := p.Listen
	p.Unlock()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestFaultInjector checks that each fault does to real TCP traffic what
// the chaos run claims it does.
func TestFaultInjector(t *testing.T) {
	n := newNetwork()
	defer func() { _ = n.close() }()

	t.Run("latency", func(t *testing.T) {
		c := proxied(t, n, "latency",
			toxic{"l_down", "latency", "downstream", map[string]any{"latency": 100}},
			toxic{"l_up", "latency", "upstream", map[string]any{"latency": 100}})
		start := time.Now()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < 200*time.Millisecond {
			t.Errorf("round trip %v through 100 ms each way", rtt)
		}
	})

	t.Run("bandwidth", func(t *testing.T) {
		c := proxied(t, n, "bandwidth", toxic{"b_down", "bandwidth", "downstream", map[string]any{"rate": 64}})
		sent := make([]byte, 32<<10)
		wrote := make(chan error, 1)
		start := time.Now()
		go func() { _, err := c.Write(sent); wrote <- err }()
		if _, err := io.ReadFull(c, make([]byte, len(sent))); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("32 KiB at 64 KB/s took %v", d)
		}
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("slicer", func(t *testing.T) {
		c := proxied(t, n, "slicer", toxic{"s_down", "slicer", "downstream",
			map[string]any{"average_size": 8, "size_variation": 4, "delay": 5000}})
		if _, err := c.Write(make([]byte, 200)); err != nil {
			t.Fatal(err)
		}
		reads, got, buf := 0, 0, make([]byte, 4096)
		for got < 200 {
			k, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			reads++
			got += k
		}
		if reads < 5 {
			t.Errorf("200 bytes in 4-12 byte slices 5 ms apart arrived in %d reads", reads)
		}
	})

	t.Run("half-open", func(t *testing.T) {
		c := proxied(t, n, "halfopen",
			toxic{"t_down", "timeout", "downstream", map[string]any{"timeout": 0}},
			toxic{"t_up", "timeout", "upstream", map[string]any{"timeout": 0}})
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var ne net.Error
		if _, err := c.Read(make([]byte, 4)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read through a blackhole: %v, want a timeout with the connection open", err)
		}
	})

	t.Run("reset", func(t *testing.T) {
		c := proxied(t, n, "reset", toxic{"r_down", "reset_peer", "downstream", map[string]any{"timeout": 0}})
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 4)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("read after reset_peer: %v, want ECONNRESET", err)
		}
	})

	t.Run("restart on the same port", func(t *testing.T) {
		v, err := n.newVenue(99, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer v.close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		first := v.server()
		dial := func() error {
			c, _, err := websocket.Dial(ctx, v.url(), nil)
			if err == nil {
				_ = c.CloseNow()
			}
			return err
		}
		if err := dial(); err != nil {
			t.Fatal(err)
		}
		v.kill()
		if _, err := net.DialTimeout("tcp", v.addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial while down: %v, want ECONNREFUSED", err)
		}
		if err := v.revive(); err != nil {
			t.Fatal(err)
		}
		if err := dial(); err != nil {
			t.Fatalf("dial after restart: %v", err)
		}
		if v.server() == first {
			t.Error("the venue still runs its first server")
		}
		if err := v.server().WaitTotalConns(ctx, 1); err != nil {
			t.Errorf("the new server process: %v", err)
		}
	})
}
