// Package hostile is a WebSocket server for tests that writes handshakes and
// frames by hand over raw TCP on 127.0.0.1, so that it can break every rule a
// real server library enforces: redirects, bad accept keys, silence after a
// 101, masked frames, floods of fragments or pings, huge length headers,
// headers followed by silence, slow drips, any close code, accept-and-drop.
// It contains no WebSocket library: what it sends is exactly what the script
// writes.
//
// A Server runs a Script once per accepted connection, in its own goroutine:
//
//	srv := hostile.NewServer(t, func(c *hostile.Conn) {
//		if c.Handshake() != nil {
//			return
//		}
//		_ = c.WriteFrame(true, hostile.OpText, true, []byte("masked")) // illegal from a server
//		c.Hold()                                                      // keep it open until the test ends
//	})
//	dial(srv.URL())
//
// Close (registered with t.Cleanup by NewServer) closes the listener and every
// connection and waits for the scripts to return, so tests leak nothing.
package hostile

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Opcodes of RFC 6455 section 5.2.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// MaxReadPayload bounds the payload ReadFrame accepts from the client.
const MaxReadPayload = 16 << 20

// Script is run once per accepted connection. When it returns the connection
// is closed.
type Script func(c *Conn)

// Server accepts TCP connections and runs a Script on each.
type Server struct {
	ln     net.Listener
	script Script
	done   chan struct{}
	wg     sync.WaitGroup

	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	requests []*http.Request
	once     sync.Once
	tls      *tls.Config // client side, for NewTLSServer
}

// NewServer listens on 127.0.0.1 (a free port) and runs script on every
// connection. The server is closed when the test ends.
func NewServer(t testing.TB, script Script) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", script)
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewTLSServer is NewServer over TLS (wss://) with a self-signed
// certificate for 127.0.0.1; ClientTLSConfig trusts it. The script sees
// the plaintext stream, as over TCP.
func NewTLSServer(t testing.TB, script Script) *Server {
	t.Helper()
	cert, pool, err := selfSigned()
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	s := start(ln, script)
	s.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.Cleanup(s.Close)
	return s
}

// ClientTLSConfig trusts a NewTLSServer's certificate (nil for plain TCP).
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hostile"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// Listen is NewServer on addr (e.g. "127.0.0.2:0", another loopback host on
// Linux) without a test; the caller must Close it.
func Listen(addr string, script Script) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return start(ln, script), nil
}

func start(ln net.Listener, script Script) *Server {
	s := &Server{ln: ln, script: script, done: make(chan struct{}), conns: map[*Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		c := &Conn{Conn: nc, br: bufio.NewReader(nc), srv: s}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			_ = nc.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				_ = nc.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.script(c)
		}()
	}
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is "ws://<addr>/" ("wss://" for NewTLSServer).
func (s *Server) URL() string {
	if s.tls != nil {
		return "wss://" + s.Addr() + "/"
	}
	return "ws://" + s.Addr() + "/"
}

// Accepted is the number of TCP connections accepted so far.
func (s *Server) Accepted() int { return int(s.accepted.Load()) }

// Requests returns the upgrade requests read so far (by Handshake or
// ReadRequest), in order.
func (s *Server) Requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.requests...)
}

// Close stops accepting, closes every connection and waits for the scripts.
// Calling it again does nothing.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.done)
		_ = s.ln.Close()
		for c := range s.conns {
			_ = c.Conn.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// Conn is one accepted connection, as raw TCP. Its methods are for the one
// goroutine running the script, except Close (any goroutine).
type Conn struct {
	net.Conn
	br  *bufio.Reader
	srv *Server
	req *http.Request
}

// Done is closed when the server is closing: scripts that wait should
// select on it (or use Sleep and Hold).
func (c *Conn) Done() <-chan struct{} { return c.srv.done }

// Sleep waits d, or less if the server closes; it reports whether the full
// time passed.
func (c *Conn) Sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.srv.done:
		return false
	}
}

// Hold keeps the connection open, reading and discarding what the client
// sends, until the client closes it or the server closes.
func (c *Conn) Hold() { _, _ = io.Copy(io.Discard, c.br) }

// ReadRequest reads the client's HTTP upgrade request and records it (see
// Request and Server.Requests).
func (c *Conn) ReadRequest() (*http.Request, error) {
	req, err := http.ReadRequest(c.br)
	if err != nil {
		return nil, err
	}
	c.req = req
	c.srv.mu.Lock()
	c.srv.requests = append(c.srv.requests, req)
	c.srv.mu.Unlock()
	return req, nil
}

// Request is the upgrade request read by Handshake or ReadRequest, or nil.
func (c *Conn) Request() *http.Request { return c.req }

// AcceptKey is the correct Sec-WebSocket-Accept for the request read.
func (c *Conn) AcceptKey() string {
	if c.req == nil {
		return ""
	}
	return AcceptKey(c.req.Header.Get("Sec-WebSocket-Key"))
}

// AcceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455
// section 4.2.2).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Handshake reads the upgrade request and answers a correct 101.
func (c *Conn) Handshake() error {
	if _, err := c.ReadRequest(); err != nil {
		return err
	}
	return c.Respond101(c.AcceptKey())
}

// Respond101 writes a 101 Switching Protocols with the given accept key
// (use a wrong one to test the client's check) and any extra header lines.
func (c *Conn) Respond101(accept string, extra ...string) error {
	s := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n"
	for _, h := range extra {
		s += h + "\r\n"
	}
	return c.WriteRaw([]byte(s + "\r\n"))
}

// Respond writes an HTTP response with status and header lines (e.g.
// "Location: ws://127.0.0.2:9/") and an empty body.
func (c *Conn) Respond(status int, headers ...string) error {
	s := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Length: 0\r\n", status, http.StatusText(status))
	for _, h := range headers {
		s += h + "\r\n"
	}
	return c.WriteRaw([]byte(s + "\r\n"))
}

// WriteRaw writes b as is.
func (c *Conn) WriteRaw(b []byte) error {
	_, err := c.Conn.Write(b)
	return err
}

// FrameHeader encodes a frame header announcing length payload bytes. The
// length is written as given (up to 2^64-1, which RFC 6455 forbids above
// 2^63-1). With masked set, a mask key follows (and WriteFrame masks the
// payload with it).
func FrameHeader(fin bool, op byte, masked bool, length uint64) []byte {
	b := make([]byte, 0, 14)
	b0 := op & 0x0F
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case length < 126:
		b = append(b, b0, m|byte(length))
	case length <= 0xFFFF:
		b = append(b, b0, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(length))
	default:
		b = append(b, b0, m|127)
		b = binary.BigEndian.AppendUint64(b, length)
	}
	if masked {
		b = append(b, maskKey[:]...)
	}
	return b
}

var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// Frame encodes a whole frame; a masked frame's payload is masked.
func Frame(fin bool, op byte, masked bool, payload []byte) []byte {
	b := FrameHeader(fin, op, masked, uint64(len(payload)))
	start := len(b)
	b = append(b, payload...)
	if masked {
		for i := range payload {
			b[start+i] ^= maskKey[i%4]
		}
	}
	return b
}

// WriteFrame writes one frame. A server must never set masked (RFC 6455
// section 5.1); doing so is how a test checks that the client refuses it.
func (c *Conn) WriteFrame(fin bool, op byte, masked bool, payload []byte) error {
	return c.WriteRaw(Frame(fin, op, masked, payload))
}

// WriteText writes one unmasked, final text frame.
func (c *Conn) WriteText(s string) error { return c.WriteFrame(true, OpText, false, []byte(s)) }

// WriteClose writes a close frame with code and reason (code 0: no payload).
func (c *Conn) WriteClose(code uint16, reason string) error {
	var p []byte
	if code != 0 {
		p = binary.BigEndian.AppendUint16(nil, code)
		p = append(p, reason...)
	}
	return c.WriteFrame(true, OpClose, false, p)
}

// A ReadFrame result: a frame as the client sent it, payload unmasked.
type ReadFrame struct {
	Fin     bool
	Opcode  byte
	Masked  bool
	Payload []byte
}

// CloseCode is the code of a close frame's payload, or 0.
func (f ReadFrame) CloseCode() uint16 {
	if f.Opcode != OpClose || len(f.Payload) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(f.Payload)
}

// ErrPayloadTooBig is returned by ReadFrame for a frame over MaxReadPayload.
var ErrPayloadTooBig = errors.New("hostile: client frame over MaxReadPayload")

// ReadFrame reads one frame from the client and unmasks its payload.
func (c *Conn) ReadFrame() (ReadFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return ReadFrame{}, err
	}
	f := ReadFrame{Fin: h[0]&0x80 != 0, Opcode: h[0] & 0x0F, Masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > MaxReadPayload {
		return f, ErrPayloadTooBig
	}
	var key [4]byte
	if f.Masked {
		if _, err := io.ReadFull(c.br, key[:]); err != nil {
			return f, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.Payload); err != nil {
		return f, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// ReadUntilClose reads frames until a close frame (returned) or an error.
// Pings are not answered.
func (c *Conn) ReadUntilClose() (ReadFrame, error) {
	for {
		f, err := c.ReadFrame()
		if err != nil || f.Opcode == OpClose {
			return f, err
		}
	}
}

// Redirect is a Script that answers every upgrade request with status (e.g.
// 302) and the Location header.
func Redirect(status int, location string) Script {
	return func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		_ = c.Respond(status, "Location: "+location)
	}
}

// AcceptAndDrop is a Script that completes the handshake and closes the TCP
// connection after d, without a close frame.
func AcceptAndDrop(d time.Duration) Script {
	return func(c *Conn) {
		if c.Handshake() == nil {
			c.Sleep(d)
		}
	}
}

// PingFlood is a Script that completes the handshake and then sends a ping
// every interval (0: as fast as the socket takes them) until the
// connection or the server closes. The client's frames are read and
// dropped meanwhile.
func PingFlood(interval time.Duration) Script {
	return func(c *Conn) {
		if c.Handshake() != nil {
			return
		}
		go c.Hold()
		ping := Frame(true, OpPing, false, []byte("flood"))
		for {
			if c.WriteRaw(ping) != nil {
				return
			}
			if interval > 0 && !c.Sleep(interval) {
				return
			}
		}
	}
}

// Drip writes b in chunks of n bytes, one chunk every interval (a slow
// drip), and reports whether all of it went out before the server closed.
func (c *Conn) Drip(b []byte, n int, interval time.Duration) bool {
	for len(b) > 0 {
		k := min(n, len(b))
		if c.WriteRaw(b[:k]) != nil {
			return false
		}
		b = b[k:]
		if len(b) > 0 && !c.Sleep(interval) {
			return false
		}
	}
	return true
}
