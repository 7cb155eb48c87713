package cluster

import (
	"net"
	"sync"
	"testing"
)

// cutProxy forwards TCP from its own address to target until Cut: then it
// closes every connection it forwards and every new one at once (a
// partition: the address stays bound, nothing gets through), until Heal.
// A small forwarder of our own rather than Toxiproxy: a cut is all the
// partition test needs, and Toxiproxy would bring its HTTP API's
// dependencies into the library's go.mod (test/chaos, which needs its
// toxics, is a module of its own for that reason).
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	gate  chan struct{} // stalled: closed by Unstall (or Cut); nil otherwise
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// addr is the proxy's address.
func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			_ = in.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(in)
	}
}

// track remembers c unless the proxy is cut.
func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *cutProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *cutProxy) forward(in net.Conn) {
	defer p.wg.Done()
	defer p.untrack(in)
	out, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(out) {
		if out != nil {
			_ = out.Close()
		}
		return
	}
	defer p.untrack(out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.wait() // stalled: hold the bytes (and read no more) until Unstall
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done // one side ended: close both (the deferred untracks), which ends the other copy
	p.untrack(in)
	p.untrack(out)
	<-done
}

// Stall holds every byte on its way through, in both directions, with
// the connections left open and no reset: a network that drops the
// traffic silently (or a link stalled), which TCP on either end does not
// notice, until Unstall lets the held bytes through.
func (p *cutProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate == nil {
		p.gate = make(chan struct{})
	}
}

// Unstall lets the held bytes and those after them through.
func (p *cutProxy) Unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

// wait returns once the proxy is not stalled.
func (p *cutProxy) wait() {
	p.mu.Lock()
	g := p.gate
	p.mu.Unlock()
	if g != nil {
		<-g
	}
}

// Cut closes every forwarded connection and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil { // what a stall held is dropped with the connections
		close(p.gate)
		p.gate = nil
	}
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Heal forwards new connections again.
func (p *cutProxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *cutProxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
