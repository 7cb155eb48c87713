package review13d

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// rawPeer is a hand-written WebSocket server on 127.0.0.1: its own
// handshake and frame codec, no WebSocket library.
type rawPeer struct {
	ln  net.Listener
	URL string
	// onConn runs per accepted connection after the handshake (in its own
	// goroutine); nil serves with serveJSONRPC(nil).
	onConn func(rc *rawConn)
	conns  atomic.Int64
	mu     sync.Mutex
	open   []*rawConn
	raw    []net.Conn
	wg     sync.WaitGroup
	closed atomic.Bool
	// refuse answers every handshake with 503 while set.
	refuse  atomic.Bool
	refused atomic.Int64
	// echo, while set, answers every handshake with 400 and the request's
	// headers and URL in the body (a hostile venue echoing credentials).
	echo atomic.Bool
	// stallNext, while set, makes the next TCP connection's handshake hang
	// (no answer) until the peer closes; it clears itself.
	stallNext atomic.Bool
	stalled   atomic.Int64
}

type rawConn struct {
	pe  *rawPeer
	idx int
	c   net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
}

func newRawPeer(t *testing.T, onConn func(rc *rawConn)) *rawPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pe := &rawPeer{ln: ln, URL: "ws://" + ln.Addr().String() + "/ws", onConn: onConn}
	pe.wg.Add(1)
	go pe.accept()
	t.Cleanup(pe.close)
	return pe
}

func (pe *rawPeer) close() {
	if pe.closed.Swap(true) {
		return
	}
	pe.ln.Close()
	pe.dropAll()
	pe.mu.Lock()
	for _, c := range pe.raw {
		c.Close()
	}
	pe.mu.Unlock()
	pe.wg.Wait()
}

// dropAll closes every open TCP connection abruptly (no close frame).
func (pe *rawPeer) dropAll() {
	pe.mu.Lock()
	cs := pe.open
	pe.open = nil
	pe.mu.Unlock()
	for _, c := range cs {
		c.c.Close()
	}
}

func (pe *rawPeer) accept() {
	defer pe.wg.Done()
	for {
		c, err := pe.ln.Accept()
		if err != nil {
			return
		}
		pe.mu.Lock()
		pe.raw = append(pe.raw, c)
		pe.mu.Unlock()
		pe.wg.Add(1)
		go func() {
			defer pe.wg.Done()
			defer c.Close()
			rc := &rawConn{pe: pe, c: c, br: bufio.NewReader(c)}
			if pe.stallNext.CompareAndSwap(true, false) {
				pe.stalled.Add(1)
				_, _ = io.Copy(io.Discard, c) // until the client gives up on it or the peer closes
				return
			}
			if pe.echo.Load() {
				if req, err := http.ReadRequest(rc.br); err == nil {
					var sb strings.Builder
					sb.WriteString("bad request " + req.URL.String() + " ")
					for k, v := range req.Header {
						sb.WriteString(k + "=" + strings.Join(v, ",") + "; ")
					}
					body := sb.String()
					pe.refused.Add(1)
					_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body))
				}
				return
			}
			if pe.refuse.Load() {
				if _, err := http.ReadRequest(rc.br); err == nil {
					pe.refused.Add(1)
					_, _ = c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				}
				return
			}
			// Listed before the handshake's answer: once the client sees
			// it, dropAll must reach this connection (listed after, a drop
			// right after the client connected could miss it).
			rc.idx = int(pe.conns.Add(1)) - 1
			pe.mu.Lock()
			if pe.closed.Load() {
				pe.mu.Unlock()
				return
			}
			pe.open = append(pe.open, rc)
			pe.mu.Unlock()
			if err := rc.handshake(); err != nil {
				return
			}
			if pe.onConn != nil {
				pe.onConn(rc)
			} else {
				rc.serveJSONRPC(nil)
			}
		}()
	}
}

func (rc *rawConn) handshake() error {
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(rc.br)
	if err != nil {
		return err
	}
	_ = rc.c.SetReadDeadline(time.Time{})
	key := req.Header.Get("Sec-WebSocket-Key")
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	_, err = rc.c.Write([]byte(resp))
	return err
}

func (rc *rawConn) writeFrame(op byte, p []byte) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	hdr := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, byte(n))
	case n < 1<<16:
		hdr = append(hdr, 126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	_ = rc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.c.Write(append(hdr, p...))
	return err
}

func (rc *rawConn) text(s string) error { return rc.writeFrame(1, []byte(s)) }

func (rc *rawConn) closeFrame(code uint16, reason string) error {
	return rc.writeFrame(8, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// readFrame reads one (unfragmented) client frame, unmasked.
func (rc *rawConn) readFrame() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		return 0, nil, err
	}
	op := h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return 0, nil, errors.New("too big")
	}
	var mask [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(rc.br, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(rc.br, p); err != nil {
		return 0, nil, err
	}
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return op, p, nil
}

type rpcReq struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Channels []string `json:"channels"`
	} `json:"params"`
}

// serveJSONRPC answers like a Deribit-ish venue: pings get pongs,
// public/subscribe and public/unsubscribe confirm every channel,
// public/test answers, anything else with an id gets result "ok".
// handle, when not nil, sees each text frame first; true means handled.
func (rc *rawConn) serveJSONRPC(handle func(rc *rawConn, raw []byte, r rpcReq) bool) {
	for {
		op, p, err := rc.readFrame()
		if err != nil {
			return
		}
		switch op {
		case 9:
			if rc.writeFrame(10, p) != nil {
				return
			}
			continue
		case 8:
			_ = rc.writeFrame(8, p)
			return
		case 1:
		default:
			continue
		}
		var r rpcReq
		_ = json.Unmarshal(p, &r)
		if handle != nil && handle(rc, p, r) {
			continue
		}
		if len(r.ID) == 0 {
			continue
		}
		var res string
		switch r.Method {
		case "public/subscribe", "private/subscribe", "public/unsubscribe", "private/unsubscribe":
			b, _ := json.Marshal(r.Params.Channels)
			if r.Params.Channels == nil {
				b = []byte("[]")
			}
			res = string(b)
		default:
			res = `"ok"`
		}
		if rc.text(`{"jsonrpc":"2.0","id":`+string(r.ID)+`,"result":`+res+`}`) != nil {
			return
		}
	}
}

func isSub(r rpcReq) bool { return strings.HasSuffix(r.Method, "/subscribe") }
