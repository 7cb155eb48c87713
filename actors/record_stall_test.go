package actors_test

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/transport/wstest"
)

// stallWriter blocks every Write until released.
type stallWriter struct {
	release chan struct{}
	once    sync.Once
}

func (w *stallWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }
func (w *stallWriter) free()                       { w.once.Do(func() { close(w.release) }) }

// Issue 12 item 15: a recorder whose writer never returns must not stall
// the reader. Before, the reader blocked in the recorder, pongs went
// unread, every heartbeat reconnect left one more stuck reader
// (goroutines 2 -> 11 in 4 s). Now frames queue (bounded) for the writer
// goroutine, the overflow is counted, and the connection stays healthy.
func TestStalledRecorderNeverBlocksTheConnection(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	w := &stallWriter{release: make(chan struct{})}
	defer w.free()
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), fast(
		actors.WithRecorder(w), func(c *actors.Config) { c.RecordQueue, c.RecordQueueBytes = 64, 1<<20 }, actors.WithHandler(box.handle),
		actors.WithHeartbeat(actors.HeartbeatPingPong, 100*time.Millisecond))...)
	before := runtime.NumGoroutine()
	payload := bytes.Repeat([]byte("x"), 1024)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		_ = c.Send(ctxT(t, time.Second), payload) // echoed: recorded twice
		time.Sleep(5 * time.Millisecond)
	}
	h := c.Health()
	grown := runtime.NumGoroutine() - before
	t.Logf("after 4 s: goroutines %+d, reconnects %d, recorded frames dropped %d, delivered %d", grown, h.Reconnects, h.RecordsDropped, len(box.msgs))
	if h.Reconnects != 0 || h.State != actors.StateConnected {
		t.Fatalf("the stalled recorder broke the connection: %d reconnects, state %v", h.Reconnects, h.State)
	}
	if grown > 3 {
		t.Fatalf("goroutines grew by %d", grown)
	}
	if h.RecordsDropped == 0 {
		t.Fatal("nothing was counted as dropped though the writer never wrote")
	}
	start := time.Now()
	err := c.Close()
	if took := time.Since(start); took > actors.RecordCloseWait+3*time.Second {
		t.Fatalf("Close took %v with a stalled recorder", took)
	}
	_ = err
}

// The queue's overflow shows in the recording itself: a gap record counts
// what was dropped, and Summarize adds it up.
func TestRecorderGapRecord(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	w := &gateWriter{stall: &stallWriter{release: make(chan struct{})}}
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithRecorder(w), func(c *actors.Config) { c.RecordQueue, c.RecordQueueBytes = 4, 1<<20 }, actors.WithHandler(box.handle))...)
	for i := 0; i < 50; i++ {
		if err := c.Send(ctxT(t, time.Second), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "every echo delivered", func() bool { return c.Health().MessagesIn == 50 })
	if c.Health().RecordsDropped == 0 {
		t.Fatal("no drops counted")
	}
	w.stall.free()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := record.Summarize(bytes.NewReader(w.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Gaps == 0 || sum.Dropped == 0 || uint64(sum.In+sum.Out)+sum.Dropped != 100 {
		t.Fatalf("summary %+v: want gap records and in+out+dropped = 100", sum)
	}
}

// gateWriter keeps what is written once its stall is released.
type gateWriter struct {
	stall *stallWriter
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.stall.release
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gateWriter) bytes() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]byte(nil), g.buf.Bytes()...)
}

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("recorder writer exploded") }

// Issue 12 item 14 (recorder part): a writer that panics ended the process
// (exit 2). Now the panic is recovered in the writer goroutine, logged,
// the recording stops with an error that is a *PanicError in
// Health.RecordError, and the client carries on.
func TestPanickingRecorderStopsOnlyTheRecording(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithRecorder(panicWriter{}), actors.WithHandler(box.handle), actors.WithLogger(zap.New(core)))...)
	for i := 0; i < 3; i++ {
		if err := c.Send(ctxT(t, time.Second), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		box.next(t)
	}
	eventually(t, 5*time.Second, "the recording error in Health", func() bool { return c.Health().RecordError != nil })
	h := c.Health()
	if !errors.As(h.RecordError, new(*actors.PanicError)) || h.State != actors.StateConnected {
		t.Fatalf("Health: RecordError %v, state %v", h.RecordError, h.State)
	}
	if logs.FilterMessageSnippet("recording stopped").Len() != 1 {
		t.Fatalf("the stop was not logged once: %v", logs.All())
	}
	if err := c.Send(ctxT(t, time.Second), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	box.next(t)
	if err := c.Close(); !errors.As(err, new(*actors.PanicError)) && err != nil {
		t.Logf("Close: %v", err)
	}
}
