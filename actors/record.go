package actors

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/redact"
)

// Record is one line of a session recording (JSONL): a frame, its
// direction and when it was seen. Text frames are stored as text, binary
// frames base64-encoded (Binary true).
type Record struct {
	Time       time.Time `json:"t"`
	Dir        string    `json:"dir"` // "in" or "out"
	Binary     bool      `json:"bin,omitempty"`
	Data       string    `json:"data"`
	Generation uint64    `json:"gen,omitempty"`
}

// Direction values of Record.Dir.
const (
	DirIn  = "in"
	DirOut = "out"
)

// WithRecorder records every inbound and outbound data frame to w as JSONL
// (one Record per line), with secrets redacted: the values of JSON members
// such as "client_secret", "access_token", "refresh_token", "signature",
// "password" and "api_key" are replaced, at any depth. Writes are buffered
// and flushed when the client stops; a write error stops the recording
// and is logged, never the client. w is not closed by the client (see
// WithRecordFile).
func WithRecorder(w io.Writer) Option { return func(c *Config) { c.Recorder = w } }

// WithRecordFile records to a file created (or truncated) at path; the
// client closes it when it stops. See WithRecorder.
func WithRecordFile(path string) Option { return func(c *Config) { c.RecordFile = path } }

// recorder writes records; it is shared by the reader, writers and the
// actor, so it holds a mutex.
type recorder struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	closer io.Closer
	enc    *json.Encoder
	err    error
}

func newRecorder(cfg Config) (*recorder, error) {
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
	bw := bufio.NewWriterSize(w, 64<<10)
	return &recorder{bw: bw, closer: closer, enc: json.NewEncoder(bw)}, nil
}

func (r *recorder) record(dir string, typ websocket.MessageType, data []byte, gen uint64) {
	if r != nil {
		r.recordAt(time.Now(), dir, typ, data, gen)
	}
}

// recordAt records a frame with the time it was sent or received (an
// outbound frame is recorded once its write succeeded, with the time the
// write began: its echo may be recorded first, but never earlier in time).
func (r *recorder) recordAt(at time.Time, dir string, typ websocket.MessageType, data []byte, gen uint64) {
	if r == nil {
		return
	}
	rec := Record{Time: at.UTC(), Dir: dir, Generation: gen}
	if typ == websocket.MessageBinary || !utf8.Valid(data) {
		rec.Binary = true
		rec.Data = encodeBase64(data)
	} else {
		rec.Data = string(redact.JSON(data))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = r.enc.Encode(rec)
	}
}

// close flushes and, for a record file, closes it.
func (r *recorder) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	if ferr := r.bw.Flush(); err == nil {
		err = ferr
	}
	if r.closer != nil {
		if cerr := r.closer.Close(); err == nil {
			err = cerr
		}
	}
	r.err = errors.New("zenws: recording closed")
	return err
}

// Replay reads a recording and calls fn for every record in order; fn's
// error stops it. A line that is not a Record is an error naming the line.
func Replay(r io.Reader, fn func(Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("zenws: replay: line %d: %w", line, err)
		}
		if rec.Dir != DirIn && rec.Dir != DirOut {
			return fmt.Errorf("zenws: replay: line %d: direction %q", line, rec.Dir)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("zenws: replay: %w", err)
	}
	return nil
}

// RecordingSummary describes a recording.
type RecordingSummary struct {
	Records, In, Out int
	First, Last      time.Time
}

// Duration is the time between the first and the last record.
func (s RecordingSummary) Duration() time.Duration { return s.Last.Sub(s.First) }

// Summarize reads a recording and counts it.
func Summarize(r io.Reader) (RecordingSummary, error) {
	var s RecordingSummary
	err := Replay(r, func(rec Record) error {
		if s.Records == 0 {
			s.First = rec.Time
		}
		s.Records++
		s.Last = rec.Time
		if rec.Dir == DirIn {
			s.In++
		} else {
			s.Out++
		}
		return nil
	})
	return s, err
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
