package review16b

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Modes of a linkProxy.
const (
	pass   int32 = iota // forward
	cut                 // close every connection and each new one (resets)
	hole                // keep connections, drop every byte (a black hole: no reset)
	oneAB               // forward from the dialler to the target only; drop the answers
	slowAB              // forward, the dialler's bytes to the target late by delay
)

// linkProxy forwards TCP to target, and can cut the link, black-hole it,
// or let one direction through. It counts connections accepted.
type linkProxy struct {
	ln       net.Listener
	target   string
	mode     atomic.Int32
	accepted atomic.Int64
	delay    atomic.Int64 // ns, for slowAB

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *linkProxy) addr() string { return p.ln.Addr().String() }

// set changes the mode; cut closes what is open.
func (p *linkProxy) set(m int32) {
	p.mode.Store(m)
	if m == cut {
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	}
}

func (p *linkProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if p.mode.Load() == cut {
			_ = in.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(in)
	}
}

func (p *linkProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *linkProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		delete(p.conns, c)
		_ = c.Close()
	}
	p.mu.Unlock()
}

func (p *linkProxy) forward(in net.Conn) {
	defer p.wg.Done()
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = in.Close()
		return
	}
	p.track(in, out)
	defer p.untrack(in, out)
	done := make(chan struct{}, 2)
	go func() { p.copy(out, in, true); done <- struct{}{} }()
	go func() { p.copy(in, out, false); done <- struct{}{} }()
	<-done
}

// copy moves bytes from src to dst unless the mode drops them.
func (p *linkProxy) copy(dst, src net.Conn, forward bool) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			m := p.mode.Load()
			if m == slowAB && forward {
				time.Sleep(time.Duration(p.delay.Load()))
			}
			drop := m == hole || m == oneAB && !forward
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

func (p *linkProxy) close() {
	_ = p.ln.Close()
	p.set(cut)
	p.wg.Wait()
}
