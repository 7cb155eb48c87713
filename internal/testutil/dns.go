package testutil

import (
	"context"
	"net"
	"sync"
	"testing"
)

// NXDomainDialer returns a dial function for transport.Options.NetDial (and
// actors.Config.NetDial) whose resolver asks a DNS server on 127.0.0.1 that
// answers every query with NXDOMAIN, so "unresolvable host" is tested for
// real without a query leaving the machine. The server stops with the test.
func NXDomainDialer(t testing.TB) func(ctx context.Context, network, addr string) (net.Conn, error) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns listen: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			resp := append([]byte(nil), buf[:n]...)
			resp[2] |= 0x80                   // QR: this is a response
			resp[3] = (resp[3] & 0x70) | 0x83 // RA, RCODE 3 = NXDOMAIN
			for i := 6; i < 10; i++ {         // no answers, no authority
				resp[i] = 0
			}
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); wg.Wait() })
	addr := pc.LocalAddr().String()
	d := &net.Dialer{Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", addr)
		},
	}}
	return d.DialContext
}
