package actors_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// panickyCore is a zap core whose writes panic: user code the client runs
// on its actor's goroutine (the logger).
type panickyCore struct{ zapcore.LevelEnabler }

func (c panickyCore) With([]zapcore.Field) zapcore.Core { return c }
func (c panickyCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}
func (panickyCore) Write(zapcore.Entry, []zapcore.Field) error { panic("log sink bug") }
func (panickyCore) Sync() error                                { return nil }

// A panic on the client actor that the library does not guard (here, the
// user's logger) is named: Connect's error, Health.LastError and StopReason
// carry a *PanicError (before: "client closed", no reason).
func TestUnguardedPanicIsNamed(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c, err := actors.Connect(ctxT(t, 5*time.Second), newSystem(t), srv.URL(),
		fast(actors.WithLogger(zap.New(panickyCore{zapcore.InfoLevel})))...)
	var pe *actors.PanicError
	if err == nil {
		// The logger panics on the "connected" line, just after the state
		// was published: Connect may have seen it. The client stops all the
		// same, and says why.
		if werr := c.Wait(ctxT(t, 5*time.Second)); werr != nil {
			t.Fatalf("the client did not stop after the panic: %v", werr)
		}
		err = c.Health().StopReason
	}
	if !errors.As(err, &pe) {
		t.Fatalf("Connect / StopReason = %v, want a *PanicError", err)
	}
}
