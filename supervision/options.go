package supervision

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
)

// Defaults, as in the original's ClientSupervisor.
const (
	DefaultMaxRestarts = 10
	DefaultWithin      = 60 * time.Second
	// DefaultStopWait bounds Stop and StopClient.
	DefaultStopWait = 10 * time.Second
)

// MinRestartWindow is the shortest restart window WithRestartBudget and
// WithSupervisorIntensity accept: a window of nanoseconds would let every
// restart fall outside it (an unlimited budget).
const MinRestartWindow = 100 * time.Millisecond

// Option configures a supervisor (and NewStrategy).
type Option func(*options)

type options struct {
	maxRestarts     int
	within          time.Duration
	intensity       int // OTP-style, over all clients; 0 = off
	intensityWithin time.Duration
	stopWait        time.Duration
	logger          *zap.Logger
}

func newOptions(opts []Option) options {
	o := options{maxRestarts: DefaultMaxRestarts, within: DefaultWithin, stopWait: DefaultStopWait}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	return o
}

// validate reports invalid values, as an *actors.ConfigError naming the
// option.
func (o options) validate() error {
	bad := func(field, format string, args ...any) error {
		return &actors.ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	switch {
	case o.maxRestarts < 0:
		return bad("RestartBudget.maxRestarts", "must not be negative, got %d", o.maxRestarts)
	case o.within < MinRestartWindow:
		return bad("RestartBudget.within", "must be at least %v, got %v", MinRestartWindow, o.within)
	case o.intensity < 0:
		return bad("SupervisorIntensity.maxRestarts", "must not be negative, got %d", o.intensity)
	case o.intensity > 0 && o.intensityWithin < MinRestartWindow:
		return bad("SupervisorIntensity.within", "must be at least %v, got %v", MinRestartWindow, o.intensityWithin)
	case o.stopWait <= 0:
		return bad("StopWait", "must be positive, got %v", o.stopWait)
	}
	return nil
}

// sanitize replaces invalid values with the defaults (for Props and
// NewStrategy, which cannot return an error) and logs it.
func (o *options) sanitize() {
	if err := o.validate(); err != nil {
		o.logger.Error("invalid supervision option; using the defaults", zap.Error(err))
		d := newOptions(nil)
		d.logger = o.logger
		*o = d
	}
}

// WithRestartBudget sets how often one client may be restarted: at most
// maxRestarts restarts within any window of length within (default 10 in
// 60 s). The failure that would be restart number maxRestarts+1 inside the
// window stops the client for good instead. The budget is counted per
// client, so one flapping venue cannot take the others down; OTP counts it
// over the whole supervisor (see WithSupervisorIntensity). maxRestarts 0
// means never restart. within must be at least MinRestartWindow (100 ms);
// Start rejects less with an *actors.ConfigError.
func WithRestartBudget(maxRestarts int, within time.Duration) Option {
	return func(o *options) { o.maxRestarts, o.within = maxRestarts, within }
}

// WithSupervisorIntensity adds OTP's rule on top of the per-client budget:
// when more than maxRestarts restarts of any clients happen within the
// window, the supervisor stops every client, publishes SupervisorGaveUp and
// fails to its own parent (escalation). A supervisor started with Start has
// a guardian that then stops it; one embedded with Props is handled by your
// parent's strategy. Off by default; within must be at least
// MinRestartWindow.
func WithSupervisorIntensity(maxRestarts int, within time.Duration) Option {
	return func(o *options) { o.intensity, o.intensityWithin = maxRestarts, within }
}

// WithStopWait bounds how long Stop waits for the supervisor and every
// client's goroutines (default 10 s). StopClient is bounded by the client's
// own actors.Config.CloseWait.
func WithStopWait(d time.Duration) Option { return func(o *options) { o.stopWait = d } }

// WithLogger sets the supervisor's zap logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }
