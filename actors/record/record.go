// Package record reads the session recordings a zenws client writes
// (actors.WithRecorder, actors.WithRecordFile): JSONL, one Record per line,
// with secrets already redacted by the writer. It does not import actors,
// so a tool that only reads recordings links none of the client.
package record

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Record is one line of a session recording (JSONL): a frame, its
// direction and when it was seen. Text frames are stored as text, binary
// frames base64-encoded (Binary true). A record with Dir DirGap says that
// Dropped records were dropped before it (the writer fell behind).
type Record struct {
	Time   time.Time `json:"t"`
	Dir    string    `json:"dir"` // DirIn, DirOut or DirGap
	Binary bool      `json:"bin,omitempty"`
	Data   string    `json:"data"`
	// Generation is the connection the frame came in on or left on (an
	// order's connection, say); 0 for outbound frames in recordings made
	// before zenws recorded it.
	Generation uint64 `json:"gen,omitempty"`
	Dropped    uint64 `json:"dropped,omitempty"` // DirGap: records dropped since the previous record
}

// Direction values of Record.Dir.
const (
	DirIn  = "in"
	DirOut = "out"
	DirGap = "gap" // records were dropped here (Record.Dropped says how many)
)

// Replay reads a recording and calls fn for every record in order; fn's
// error stops it. A line that is not a Record is an error naming the line;
// a line may be up to 64 MiB long.
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
		if rec.Dir != DirIn && rec.Dir != DirOut && rec.Dir != DirGap {
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

// Summary describes a recording. Records counts every record; In and Out
// the frames of each direction; Gaps the DirGap records, and Dropped the
// frames they say were dropped; First and Last the times of the first and
// the last record.
type Summary struct {
	Records, In, Out int
	First, Last      time.Time
	Gaps             int
	Dropped          uint64
}

// Duration is the time between the first and the last record.
func (s Summary) Duration() time.Duration { return s.Last.Sub(s.First) }

// Summarize reads a recording and counts it.
func Summarize(r io.Reader) (Summary, error) {
	var s Summary
	err := Replay(r, func(rec Record) error {
		if s.Records == 0 {
			s.First = rec.Time
		}
		s.Records++
		s.Last = rec.Time
		switch rec.Dir {
		case DirIn:
			s.In++
		case DirOut:
			s.Out++
		default:
			s.Gaps++
			s.Dropped += rec.Dropped
		}
		return nil
	})
	return s, err
}
