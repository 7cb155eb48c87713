package actors

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/zenws/zenws/internal/redact"
)

// F7 of the second review: the redaction of a recorded frame runs on the
// recorder's writer goroutine, never on the connection's reader or a
// sender. recordAt only copies the frame into the queue: a count of its
// allocations (the writer is not started, so nothing else allocates) shows
// that no redaction or encoding happens there; the redactor would allocate
// several times for this frame. The writer then records it redacted, from
// its own copy (the caller reused its buffer meanwhile).
func TestRecordRedactsOnTheWriterGoroutine(t *testing.T) {
	var out bytes.Buffer
	s := redact.NewScrubber()
	s.Add("KNOWNa1b2c3d4e5f6g7h8i9")
	r, err := newRecorder(Config{Recorder: &out}, s, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r.started = true // no writer yet: only recordAt allocates below
	frame := []byte(strings.Repeat("password=x Authorization: Bearer abc KNOWNa1b2c3d4e5f6g7h8i9 ", 50))
	allocs := testing.AllocsPerRun(50, func() { r.record(dirIn, websocket.MessageText, frame, 1) })
	if allocs > 2 {
		t.Errorf("recordAt allocated %.1f times per frame: it redacts or encodes on the caller's goroutine", allocs)
	}
	for i := range frame {
		frame[i] = 'x' // the reader's buffer is reused
	}
	go r.run()
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	rec := out.String()
	if n := strings.Count(rec, `"dir":"in"`); n != 51 {
		t.Fatalf("recorded %d frames, want 51", n)
	}
	if strings.Contains(rec, "=x ") || strings.Contains(rec, "KNOWNa1b2") || strings.Contains(rec, "xxxx") || !strings.Contains(rec, "password=REDACTED") {
		t.Fatalf("recording: %.300s", rec)
	}
}

// gateWriter blocks every Write until release is closed.
type gateWriter struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	return len(p), nil
}

// When Close's wait runs out, the writer drops what is still queued
// without redacting it (counted), so it ends soon after its writer
// returns instead of redacting a backlog for nobody.
func TestRecordCloseTimeoutAbandonsTheQueue(t *testing.T) {
	g := &gateWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r, err := newRecorder(Config{Recorder: g}, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r.closeWait = 10 * time.Millisecond
	big := []byte(strings.Repeat("x", 70<<10)) // past bufio's 64 KiB: the first write reaches g
	r.record(dirOut, websocket.MessageText, big, 1)
	<-g.entered
	for i := 0; i < 100; i++ {
		r.record(dirOut, websocket.MessageText, []byte("password=x"), 1)
	}
	if err := r.close(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("close: %v, want a timeout", err)
	}
	close(g.release)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer did not end after close gave up")
	}
	if n := r.droppedCount(); n != 100 {
		t.Fatalf("dropped %d, want the 100 queued", n)
	}
}
