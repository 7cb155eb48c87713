package actors

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/internal/sysreg"
)

// Connection life cycle: how a lost connection is redialled, how dials to
// one host are paced, and what becomes of a panic in user code.

// Defaults of the life-cycle options.
const (
	// defaultStableAfter: a connection that stayed up this long was
	// stable; losing it redials at once and starts the attempt count anew.
	defaultStableAfter = 10 * time.Second
	// defaultHostDialRate and defaultHostDialBurst pace the dials of all
	// clients of one actor system to one host: a burst of 20 at once, then
	// 20 a second.
	defaultHostDialRate  = 20.0
	defaultHostDialBurst = 20
)

// Minimums of duration options. Values below them are rejected with a
// *ConfigError: none of them has a real use, and each below its floor
// turned into a storm (a 1 ns heartbeat or connection age) or a client
// that can never send (a 1 ns write timeout).
const (
	minTimeout           = 10 * time.Millisecond // WithTimeout
	minWriteTimeout      = 10 * time.Millisecond // Config.WriteTimeout
	minRequestTimeout    = time.Millisecond      // WithRequestTimeout
	minRetryDelay        = time.Millisecond      // WithRetryDelay
	minHeartbeatInterval = 10 * time.Millisecond // WithHeartbeat (and Config.ServerPingWindow)
	minMaxConnectionAge  = time.Second           // WithMaxConnectionAge (when not 0)
	minStableAfter       = 10 * time.Millisecond // Config.StableAfter
	minCloseWait         = time.Millisecond      // Config.CloseWait
	minMessageTimeout    = 10 * time.Millisecond // Config.MessageTimeout (when not 0)
)

// attemptsSpent reports whether the current healing episode has made every
// dial RetryCount allows; never with RetryForever.
func (a *clientActor) attemptsSpent() bool {
	return a.cfg.RetryCount != RetryForever && a.attempts >= a.limit
}

// ErrNilContext is returned by every method that takes a context when it
// is given a nil one; nothing is started or sent.
var ErrNilContext = errors.New("zenws: nil context")

// PanicError is what a panic in user code (a Dialect, a NetDial function,
// a connect hook) becomes: the client logs it, counts it as a failed
// attempt or restore, and carries on; the process does not crash.
type PanicError struct {
	Where string // what panicked, e.g. "dialect (restore)", "NetDial"
	Value any    // the value passed to panic
}

// Error implements the error interface.
func (e *PanicError) Error() string { return fmt.Sprintf("zenws: %s panicked: %v", e.Where, e.Value) }

// checkCtx is the guard of every ctx-taking entry point: a nil ctx is
// ErrNilContext, an ended one its error (so that nothing is written on an
// already cancelled ctx).
func checkCtx(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	return ctx.Err()
}

// safeNetDial wraps a user's NetDial so that a panic in it is a failed
// dial (a *PanicError), not a crash: net/http calls it on a goroutine of
// its own, where nothing else could recover it.
func safeNetDial(fn func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if fn == nil {
		return nil
	}
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		defer func() {
			if r := recover(); r != nil {
				c, err = nil, &PanicError{Where: "NetDial", Value: r}
			}
		}()
		return fn(ctx, network, addr)
	}
}

// guard runs fn and turns a panic in it into a *PanicError.
func guard(where string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Where: where, Value: r}
		}
	}()
	return fn()
}

// The host dial pacers live in their actor system (internal/sysreg, the
// registry helper the balancer and supervisor use too), so that they are
// shared by the clients of one system, never across systems, and go away
// with their system (no package-global map). Every client start looks its
// pacer up: a sync.Map keeps that lookup free of a lock all of them would
// queue on.
type hostPacers struct {
	m sync.Map // pacerKey -> *ratelimit.Limiter
}

type pacerKey struct {
	host  string
	rate  float64
	burst int
}

// hostPacer returns the dial pacer of sys for the host of cfg.URL; nil when
// pacing is off.
func hostPacer(sys *actor.ActorSystem, cfg Config) *ratelimit.Limiter {
	if sys == nil || cfg.HostDialRate <= 0 {
		return nil
	}
	key := pacerKey{host: dialHost(cfg.URL), rate: cfg.HostDialRate, burst: cfg.HostDialBurst}
	reg := sysreg.For[*hostPacers](sys, "zenws/actors/dial-pacers")
	ext, ok := reg.Load("all")
	if !ok {
		ext = reg.LoadOrStore("all", &hostPacers{})
	}
	if l, ok := ext.m.Load(key); ok {
		return l.(*ratelimit.Limiter)
	}
	l, err := ratelimit.New("host dial pacer "+key.host, nil, ratelimit.Bucket{Name: "dials", Rate: key.rate, Burst: key.burst})
	if err != nil {
		return nil // Validate admits only a finite rate > 0 and a burst >= 1
	}
	got, _ := ext.m.LoadOrStore(key, l) // of two made at once, every client gets the one stored first
	return got.(*ratelimit.Limiter)
}

// dialHost is the host:port a URL dials, the default port filled in.
func dialHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" || u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// validateLifecycle checks the life-cycle fields and the duration minimums.
func (cfg Config) validateLifecycle(bad func(field, problem string)) {
	atLeast := func(field string, d, floor time.Duration) {
		if d > 0 && d < floor {
			bad(field, fmt.Sprintf("must be at least %v, got %v", floor, d))
		}
	}
	atLeast("Timeout", cfg.Timeout, minTimeout)
	atLeast("WriteTimeout", cfg.WriteTimeout, minWriteTimeout)
	atLeast("RequestTimeout", cfg.RequestTimeout, minRequestTimeout)
	atLeast("RetryDelay", cfg.RetryDelay, minRetryDelay)
	atLeast("CloseWait", cfg.CloseWait, minCloseWait)
	atLeast("MaxConnectionAge", cfg.MaxConnectionAge, minMaxConnectionAge)
	if cfg.Heartbeat != HeartbeatDisabled {
		if cfg.HeartbeatInterval <= 0 {
			bad("HeartbeatInterval", fmt.Sprintf("must be positive, got %v", cfg.HeartbeatInterval))
		}
		atLeast("HeartbeatInterval", cfg.HeartbeatInterval, minHeartbeatInterval)
		if cfg.Heartbeat == HeartbeatBinance {
			if cfg.ServerPingWindow <= 0 {
				bad("ServerPingWindow", fmt.Sprintf("must be positive, got %v", cfg.ServerPingWindow))
			}
			atLeast("ServerPingWindow", cfg.ServerPingWindow, minHeartbeatInterval)
		}
	}
	if cfg.ServerPingWindow < 0 {
		bad("ServerPingWindow", fmt.Sprintf("must not be negative, got %v", cfg.ServerPingWindow))
	}
	if cfg.StableAfter < minStableAfter {
		bad("StableAfter", fmt.Sprintf("must be at least %v, got %v", minStableAfter, cfg.StableAfter))
	}
	if cfg.HostDialRate < 0 || math.IsNaN(cfg.HostDialRate) || math.IsInf(cfg.HostDialRate, 0) {
		bad("HostDialRate", fmt.Sprintf("must be a finite rate, 0 or more, got %v", cfg.HostDialRate))
	}
	if cfg.HostDialRate > 0 && cfg.HostDialBurst < 1 {
		bad("HostDialBurst", fmt.Sprintf("must be at least 1 while pacing is on, got %d", cfg.HostDialBurst))
	}
}
