package actors

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/zenws/zenws/internal/redact"
)

// nopLogger is the default logger (Config.Logger), one for every client: a
// zap.Logger is immutable, and each client would keep its own no-op one.
var nopLogger = zap.NewNop()

// ActorSystemLogger routes Proto.Actor's own log output (log/slog) into l,
// so one zap logger holds both zenws's and the actor system's lines:
//
//	sys := actor.NewActorSystem(actors.ActorSystemLogger(logger))
//
// Every URL in those lines is redacted (user info, query values, secret
// path segments; see WithSecrets): the actor system serves many clients, so
// it cannot know their secrets by value, but the reasons zenws's clients
// fail with are already scrubbed. A few framework paths still print through
// the standard log package; they are not covered. A nil l drops the lines.
func ActorSystemLogger(l *zap.Logger) actor.ConfigOption {
	if l == nil {
		l = nopLogger // nil: Proto.Actor's own lines are dropped, not a nil dereference
	}
	core := (*redact.Scrubber)(nil).Core(l.Core())
	return actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(zapslog.NewHandler(core, zapslog.WithName("protoactor"))).With("system", s.ID)
	})
}

// everySecond lets a repeated warning through at most once a second (a
// flood must not become a flood of log lines). Safe for concurrent use.
type everySecond struct{ last atomic.Int64 }

// allow reports whether a line may be logged now.
func (e *everySecond) allow() bool {
	now, last := time.Now().UnixNano(), e.last.Load()
	return now-last >= int64(time.Second) && e.last.CompareAndSwap(last, now)
}

// limitedLine is a log line that a flapping venue cannot turn into a
// flood: at most one a second gets through at its level (per limitedLine,
// and each client has its own), the ones held back in between go out at
// DEBUG, and the next line through counts them in its "suppressed" field.
// Safe for concurrent use.
type limitedLine struct {
	every everySecond
	held  atomic.Uint64
}

// log logs msg at lvl, or at DEBUG when a line went out at lvl less than a
// second ago.
func (w *limitedLine) log(l *zap.Logger, lvl zapcore.Level, msg string, fields ...zap.Field) {
	if !w.every.allow() {
		w.held.Add(1)
		l.Debug(msg, fields...)
		return
	}
	if n := w.held.Swap(0); n > 0 {
		fields = append(fields, zap.Uint64("suppressed", n))
	}
	l.Log(lvl, msg, fields...)
}
