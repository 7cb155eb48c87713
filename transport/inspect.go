package transport

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// inspector sits between coder/websocket and the connection it reads
// (above TLS: it wraps the body of the 101 response, which is the plaintext
// stream) and parses frame headers as the bytes go by, to enforce what
// coder/websocket does not check on a client:
//
//   - a server must not mask its frames (RFC 6455 section 5.1): close 1002;
//   - a 64-bit length must have its top bit clear (section 5.2): close 1002;
//   - a message whose frames announce more than ReadLimit bytes fails at the
//     header that passes it: close 1009 (*MessageTooBigError);
//   - a message (or a control frame) must complete within MessageTimeout
//     of its first byte, and within MaxFragments frames: close 1008. The
//     timeout fails the connection only while a Read waits for the peer, so
//     a reader that is busy elsewhere is not mistaken for a stalled peer.
//
// A violation is found before the offending bytes are handed up, so
// coder/websocket never sees them; the Read that would deliver them returns
// the *ProtocolError instead, and so does every Read after it.
//
// The common case costs one pass over the frame headers in each Read (the
// payload is skipped by arithmetic) and two atomic loads: the message timer
// is touched only when a Read ends inside a frame or an unfinished message.
type inspector struct {
	rwc          io.ReadWriteCloser
	out          coalescer // writes go out through it
	interrupt    func()    // unblocks a pending Read (a past read deadline)
	timeout      time.Duration
	maxFragments int
	readLimit    int64 // a message announcing more fails at its header

	// Parse state: the reader goroutine only.
	hdr      [14]byte
	hdrN     int   // header bytes collected
	hdrNeed  int   // header length once the second byte is known, else 0
	remain   int64 // payload bytes of the current frame still to come
	data     bool  // the current frame is a data frame
	final    bool  // ... and the final frame of its message
	inMsg    bool  // a data message has begun and not ended
	frames   int   // data frames of the current message
	msgLen   int64 // payload bytes the current message's frames announced
	finished bool  // a message or control frame completed in this Read
	armed    bool  // the message timer runs (the reader's view; see mu)

	err atomic.Pointer[ProtocolError] // sticky once set
	// reading is true while a Read waits on the network: only then is an
	// incomplete message the peer's stall rather than a busy reader's.
	reading atomic.Bool

	base  time.Time    // monotonic origin for start
	start atomic.Int64 // when the incomplete unit began, ns since base
	mu    sync.Mutex   // timer and timerOn
	timer *time.Timer
	// timerOn mirrors armed for the timer callback.
	timerOn bool
}

func newInspector(rwc io.ReadWriteCloser, interrupt func(), opts Options) *inspector {
	return &inspector{rwc: rwc, out: coalescer{w: rwc}, interrupt: interrupt, timeout: opts.MessageTimeout, maxFragments: opts.MaxFragments, readLimit: opts.ReadLimit, base: time.Now()}
}

func (in *inspector) Write(p []byte) (int, error) { return in.out.Write(p) }

// Close stops the message timer and closes the stream.
func (in *inspector) Close() error {
	in.mu.Lock()
	in.timerOn = false
	if in.timer != nil {
		in.timer.Stop()
	}
	in.mu.Unlock()
	return in.rwc.Close()
}

func (in *inspector) Read(p []byte) (int, error) {
	if e := in.err.Load(); e != nil {
		return 0, e
	}
	in.reading.Store(true)
	n, err := in.rwc.Read(p)
	in.reading.Store(false)
	if e := in.err.Load(); e != nil {
		return 0, e // the timer fired while we read
	}
	in.finished = false
	if k, e := in.scan(p[:n]); e != nil {
		in.err.CompareAndSwap(nil, e)
		in.disarm()
		if k == 0 {
			return 0, in.err.Load()
		}
		return k, nil // the good bytes first; the next Read fails
	}
	in.updateTimer()
	return n, err
}

// scan parses b; on a violation it returns the offset of the offending
// byte (the bytes before it are sound) and the error.
func (in *inspector) scan(b []byte) (int, *ProtocolError) {
	i := 0
	for i < len(b) {
		if in.remain > 0 {
			k := int64(len(b) - i)
			if k > in.remain {
				k = in.remain
			}
			in.remain -= k
			i += int(k)
			if in.remain == 0 {
				in.frameDone()
			}
			continue
		}
		if in.hdrN == 0 && len(b)-i >= 2 && b[i+1]&0x80 == 0 {
			// Fast path: a whole header with a 7- or 16-bit length in b.
			l := int64(b[i+1])
			h := 2
			if l == 126 {
				if len(b)-i < 4 {
					goto slow
				}
				l, h = int64(b[i+2])<<8|int64(b[i+3]), 4
			} else if l == 127 {
				goto slow
			}
			if e := in.frameBegins(b[i], l); e != nil {
				return i + h - 1, e
			}
			i += h
			continue
		}
	slow:
		c := b[i]
		in.hdr[in.hdrN] = c
		in.hdrN++
		if in.hdrN == 2 {
			if c&0x80 != 0 {
				return i, &ProtocolError{Code: websocket.StatusProtocolError, Reason: "masked frame from the server (RFC 6455 5.1)"}
			}
			in.hdrNeed = 2
			switch c & 0x7F {
			case 126:
				in.hdrNeed += 2
			case 127:
				in.hdrNeed += 8
			}
		}
		if in.hdrN == 3 && in.hdrNeed == 10 && c&0x80 != 0 {
			return i, &ProtocolError{Code: websocket.StatusProtocolError, Reason: "frame length with the most significant bit set (RFC 6455 5.2)"}
		}
		if in.hdrN >= 2 && in.hdrN == in.hdrNeed {
			if e := in.frameStart(); e != nil {
				return i, e
			}
		}
		i++
	}
	return len(b), nil
}

// frameStart runs when a frame header collected byte by byte is complete.
func (in *inspector) frameStart() *ProtocolError {
	var l int64
	switch in.hdr[1] & 0x7F {
	case 126:
		l = int64(binary.BigEndian.Uint16(in.hdr[2:4]))
	case 127:
		l = int64(binary.BigEndian.Uint64(in.hdr[2:10]))
	default:
		l = int64(in.hdr[1] & 0x7F)
	}
	in.hdrN, in.hdrNeed = 0, 0
	return in.frameBegins(in.hdr[0], l)
}

// frameBegins runs when a frame header is complete: b0 is its first byte,
// length its payload length.
func (in *inspector) frameBegins(b0 byte, length int64) *ProtocolError {
	op := b0 & 0x0F
	in.remain = length
	in.data = op < 0x8
	in.final = b0&0x80 != 0
	if in.data {
		if op != 0 { // text or binary: a new message
			in.frames, in.msgLen = 0, 0
		}
		in.inMsg = true
		in.frames++
		if in.frames > in.maxFragments {
			return &ProtocolError{Code: websocket.StatusPolicyViolation, Reason: fmt.Sprintf("message in more than %d frames (Options.MaxFragments)", in.maxFragments)}
		}
		// Over the read limit is known from the header: failing now spares
		// waiting for bytes a stalled peer may never send (length < 2^63).
		if in.msgLen += length; in.readLimit > 0 && in.msgLen > in.readLimit {
			return &ProtocolError{Code: websocket.StatusMessageTooBig, Reason: fmt.Sprintf("message announces %d bytes, over the read limit of %d", in.msgLen, in.readLimit)}
		}
	}
	if in.remain == 0 {
		in.frameDone()
	}
	return nil
}

// frameDone runs when a frame's payload is complete.
func (in *inspector) frameDone() {
	if in.data && in.final {
		in.inMsg = false
		in.frames = 0
	}
	if !in.inMsg {
		in.finished = true
	}
}

func (in *inspector) busy() bool { return in.inMsg || in.hdrN > 0 || in.remain > 0 }

// updateTimer runs the message timer while a Read ends inside an
// unfinished frame or message. Its start moves on whenever a message
// completed in this Read, so each message gets the whole timeout.
func (in *inspector) updateTimer() {
	switch busy := in.busy(); {
	case busy && !in.armed:
		in.start.Store(int64(time.Since(in.base)))
		in.armed = true
		in.mu.Lock()
		in.timerOn = true
		if in.timer == nil {
			in.timer = time.AfterFunc(in.timeout, in.expire)
		} else {
			in.timer.Reset(in.timeout)
		}
		in.mu.Unlock()
	case busy && in.finished:
		in.start.Store(int64(time.Since(in.base)))
	case !busy && in.armed:
		in.disarm()
	}
}

func (in *inspector) disarm() {
	if !in.armed {
		return
	}
	in.armed = false
	in.mu.Lock()
	in.timerOn = false
	if in.timer != nil {
		in.timer.Stop()
	}
	in.mu.Unlock()
}

// expire is the timer's callback: it fails the stream if the unit that is
// incomplete began a whole timeout ago, or waits for the rest.
func (in *inspector) expire() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.timerOn {
		return
	}
	left := in.timeout - (time.Since(in.base) - time.Duration(in.start.Load()))
	if left > 0 {
		in.timer.Reset(left)
		return
	}
	if !in.reading.Load() {
		// The rest may be waiting in the socket for a reader that is busy
		// elsewhere: look again shortly.
		in.timer.Reset(max(in.timeout/8, time.Millisecond))
		return
	}
	in.timerOn = false
	if in.err.CompareAndSwap(nil, &ProtocolError{Code: websocket.StatusPolicyViolation, Reason: fmt.Sprintf("message incomplete after %v (Options.MessageTimeout)", in.timeout)}) {
		in.interrupt()
	}
}
