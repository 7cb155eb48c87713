package actors

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/internal/redact"
)

// Directions of recorded frames (record.Record.Dir).
const (
	dirIn  = record.DirIn
	dirOut = record.DirOut
	dirGap = record.DirGap
)

// Recording bounds: how many recorded frames, and how many bytes of them,
// may wait for the recorder's writer. Past either bound a frame is dropped
// and counted (Health.RecordsDropped), and a gap record (record.DirGap) says so in the
// recording. The connection never waits for the recorder.
const (
	defaultRecordQueue      = 4096
	defaultRecordQueueBytes = 16 << 20 // 16 MiB
	// recordCloseWait bounds how long a stopping client waits for the
	// recorder's writer to write what is queued (half of CloseWait when
	// that is shorter); what is left is dropped.
	recordCloseWait = time.Second
)

// WithRecorder records every inbound and outbound data frame to w as JSONL
// (one record.Record per line; read it with package actors/record), with secrets redacted (see redact rules below).
// The connection never waits for w: frames are copied into a queue
// (bounded, see Config.RecordQueue) for a writer goroutine that redacts them,
// encodes them and writes them through a 64 KiB buffer, flushed whenever
// the queue runs empty and when the client stops (waiting at most
// 1 s, or half of CloseWait when that is shorter); the redaction never runs on the connection's reader or
// a sender. A write error or a panic in w stops
// the recording, is logged and shows in Health.RecordError, never stops the
// client. w is not closed by the client (see WithRecordFile); a w that
// never returns holds only the writer goroutine. Default none.
//
// Redaction: a JSON frame keeps its bytes but the values of secret-named
// members (client_secret, access_token, refresh_token, signature, sign,
// password, passphrase, api_key/apiKey/api-key, secret, token, key,
// listenKey, authorization and every name ending in secret, token,
// password, passphrase or signature, and the client's venue's own names,
// venue.Redactor; any case, any depth, escapes decoded),
// the strings of positional auth args ({"op":"auth","args":[...]}) and every
// value holding one of the client's known secrets (WithSecrets). A frame
// that looks like JSON but cannot be verified (does not parse, nested over
// 1000 deep, over 32 MiB) is recorded as a placeholder,
// {"redacted":"unverifiable","reason":...,"len":N}, never raw. Plain text
// loses its known secrets, "name=value" values of secret names, bearer
// credentials and secret-looking words.
//
// Binary frames: one that is valid UTF-8 goes through the same redactor
// and is recorded Binary (base64 of the redacted bytes), or as the
// placeholder when it cannot be verified. An outbound binary frame that is
// not UTF-8 (opaque bytes: protobuf, compressed data) cannot be proven
// clean and is recorded as the placeholder with its length
// ({"redacted":"unverifiable","reason":"opaque binary frame","len":N}). An
// inbound opaque frame is recorded raw (base64), since it is the venue's
// data, not the client's credentials, unless it holds one of the client's
// known secrets verbatim (then the placeholder). Placeholders are text
// records (Binary false).
func WithRecorder(w io.Writer) Option { return func(c *Config) { c.Recorder = w } }

// WithRecordFile records to a file created (or truncated) at path; the
// client closes it when it stops. Default none; the directory must exist;
// not together with WithRecorder. See WithRecorder.
func WithRecordFile(path string) Option { return func(c *Config) { c.RecordFile = path } }

// recorder queues encoded records for a writer goroutine (started on the
// first record). The reader, the writers and the actor enqueue; nothing
// ever waits for the io.Writer.
type recorder struct {
	w       io.Writer
	closer  io.Closer
	secrets *redact.Scrubber
	log     *zap.Logger

	maxRecs   int
	maxBytes  int64
	closeWait time.Duration

	mu        sync.Mutex
	queue     []frameRec
	queued    int64 // frame bytes in queue
	gap       uint64
	gapAt     time.Time
	started   bool
	closing   bool
	stopped   bool  // the writer failed: nothing more is queued
	err       error // why the recording stopped
	wake      chan struct{}
	done      chan struct{} // closed when the writer goroutine ends
	dropped   atomic.Uint64
	closeOnce sync.Once
	abandoned atomic.Bool // close gave up waiting: what is queued is dropped unredacted
}

func newRecorder(cfg Config, secrets *redact.Scrubber, log *zap.Logger) (*recorder, error) {
	var w io.Writer = cfg.Recorder
	var closer io.Closer
	if cfg.RecordFile != "" {
		f, err := os.Create(cfg.RecordFile)
		if err != nil {
			return nil, fmt.Errorf("zenws: record file: %w", err)
		}
		w, closer = f, f
	}
	if w == nil {
		return nil, nil
	}
	r := &recorder{
		w: w, closer: closer, secrets: secrets, log: log,
		maxRecs: cfg.RecordQueue, maxBytes: cfg.RecordQueueBytes, closeWait: recordCloseWait,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if r.maxRecs == 0 {
		r.maxRecs = defaultRecordQueue
	}
	if r.maxBytes == 0 {
		r.maxBytes = defaultRecordQueueBytes
	}
	if half := cfg.CloseWait / 2; half > 0 && half < r.closeWait {
		r.closeWait = half
	}
	return r, nil
}

func (r *recorder) record(dir string, typ websocket.MessageType, data []byte, gen uint64) {
	if r != nil {
		r.recordAt(time.Now(), dir, typ, data, gen)
	}
}

// frameRec is a frame waiting for the writer, which redacts and encodes it.
type frameRec struct {
	at   time.Time
	dir  string
	typ  websocket.MessageType
	data []byte // a copy: the caller may reuse its buffer, a handler change its frame
	gen  uint64
}

// recordAt records a frame with the time it was sent or received (an
// outbound frame is recorded once its write succeeded, with the time the
// write began: its echo may be recorded first, but never earlier in time).
// It copies the frame into the queue and never blocks: the redaction (a
// hostile 15 MB plain-text frame costs tens of milliseconds or more) runs
// on the writer goroutine, never on the reader or a sender. A full queue
// drops the frame without copying it.
func (r *recorder) recordAt(at time.Time, dir string, typ websocket.MessageType, data []byte, gen uint64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.stopped || r.closing || len(r.queue) >= r.maxRecs || r.queued+int64(len(data)) > r.maxBytes {
		r.mu.Unlock()
		r.drop(at)
		return
	}
	r.queue = append(r.queue, frameRec{at: at, dir: dir, typ: typ, data: append([]byte(nil), data...), gen: gen})
	r.queued += int64(len(data))
	if !r.started {
		r.started = true
		go r.run()
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// encode redacts a frame into its JSONL record (see WithRecorder). Text,
// and binary frames that are valid UTF-8, go through the redactor (a
// binary one stays Binary, base64, unless it became a placeholder); an
// opaque outbound frame is the placeholder (it cannot be proven clean); an
// opaque inbound one is kept, base64, unless it holds a known secret.
func (r *recorder) encode(f frameRec) (line []byte, err error) {
	defer func() {
		if p := recover(); p != nil { // a redactor bug must not end the process
			line, err = nil, fmt.Errorf("zenws: redacting a recorded frame panicked: %v", p)
		}
	}()
	rec := record.Record{Time: f.at.UTC(), Dir: f.dir, Generation: f.gen}
	data := f.data
	switch {
	case utf8.Valid(data):
		out := r.secrets.Frame(data)
		if f.typ == websocket.MessageBinary && !isPlaceholder(out, data) {
			rec.Binary, rec.Data = true, encodeBase64(out)
		} else {
			rec.Data = string(out)
		}
	case f.dir == dirOut:
		rec.Data = string(redact.Placeholder(redact.ReasonOpaqueBinary, len(data)))
	case r.secrets.HoldsSecret(data):
		rec.Data = string(redact.Placeholder(redact.ReasonBinarySecret, len(data)))
	default:
		rec.Binary, rec.Data = true, encodeBase64(data)
	}
	line, err = json.Marshal(rec)
	return append(line, '\n'), err
}

// isPlaceholder reports whether the redactor replaced in by a placeholder.
func isPlaceholder(out, in []byte) bool {
	return bytes.HasPrefix(out, []byte(`{"redacted":"unverifiable"`)) && !bytes.Equal(out, in)
}

// drop counts a frame that was not recorded; the writer marks the gap.
func (r *recorder) drop(at time.Time) {
	r.dropped.Add(1)
	r.mu.Lock()
	if r.gap == 0 {
		r.gapAt = at
	}
	r.gap++
	r.mu.Unlock()
}

// run is the writer goroutine: it writes batches of queued records, a gap
// record after records were dropped, and flushes when the queue is empty.
func (r *recorder) run() {
	defer close(r.done)
	bw := bufio.NewWriterSize(r.w, 64<<10)
	var spare []frameRec
	for {
		r.mu.Lock()
		batch, gap, gapAt, closing := r.queue, r.gap, r.gapAt, r.closing
		r.queue, r.queued, r.gap = spare[:0], 0, 0
		r.mu.Unlock()
		for i, f := range batch {
			batch[i] = frameRec{}
			if r.abandoned.Load() {
				r.dropped.Add(1)
				continue
			}
			line, err := r.encode(f)
			if err != nil {
				r.dropped.Add(1)
				r.log.Warn("a recorded frame was dropped", zap.Error(err))
				continue
			}
			if err := r.write(bw, line); err != nil {
				r.fail(err)
				return
			}
		}
		spare = batch
		if gap > 0 {
			line, _ := json.Marshal(record.Record{Time: gapAt.UTC(), Dir: dirGap, Dropped: gap})
			if err := r.write(bw, append(line, '\n')); err != nil {
				r.fail(err)
				return
			}
		}
		r.mu.Lock()
		empty := len(r.queue) == 0 && r.gap == 0
		r.mu.Unlock()
		if empty {
			if err := r.flush(bw); err != nil {
				r.fail(err)
				return
			}
			if closing {
				return
			}
			<-r.wake
		}
	}
}

// write and flush call the user's writer; a panic there becomes a
// *PanicError (Where "recorder"), as in all user code.
func (r *recorder) write(bw *bufio.Writer, line []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Where: "recorder", Value: p}
		}
	}()
	_, err = bw.Write(line)
	return err
}

func (r *recorder) flush(bw *bufio.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Where: "recorder", Value: p}
		}
	}()
	return bw.Flush()
}

// fail stops the recording for good: it is logged once and kept for
// Health.RecordError; queued and later frames are dropped and counted.
func (r *recorder) fail(err error) {
	err = fmt.Errorf("zenws: recording stopped: %w", err)
	r.mu.Lock()
	r.stopped, r.err = true, err
	n := uint64(len(r.queue))
	r.queue, r.queued = nil, 0
	r.mu.Unlock()
	r.dropped.Add(n)
	r.log.Error("recording stopped; the client carries on without it", zap.Error(err))
}

// droppedCount is Health.RecordsDropped.
func (r *recorder) droppedCount() uint64 {
	if r == nil {
		return 0
	}
	return r.dropped.Load()
}

// failure is Health.RecordError.
func (r *recorder) failure() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// close lets the writer write what is queued, waiting at most
// recordCloseWait, then closes a record file. Frames recorded afterwards
// are dropped.
func (r *recorder) close() error {
	if r == nil {
		return nil
	}
	var err error
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closing = true
		started := r.started
		r.mu.Unlock()
		if started {
			select {
			case r.wake <- struct{}{}:
			default:
			}
			t := time.NewTimer(r.closeWait)
			select {
			case <-r.done:
				t.Stop()
			case <-t.C:
				r.abandoned.Store(true) // the writer drops the rest without redacting it
				err = fmt.Errorf("zenws: recording: the writer did not finish within %v (%w); %d records dropped so far", r.closeWait, ErrTimeout, r.dropped.Load())
			}
		}
		if ferr := r.failure(); err == nil {
			err = ferr
		}
		if r.closer != nil {
			if cerr := r.closer.Close(); err == nil {
				err = cerr
			}
		}
	})
	return err
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
