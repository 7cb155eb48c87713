// Package ratelimit holds the buckets a client paces its outbound frames
// with, and presets for the venues' published rules.
//
// A bucket counts as its venue does: a token bucket (golang.org/x/time/rate)
// where the venue refills credits continuously (Deribit), a sliding window
// (Bucket.Window) where the venue allows N messages in any rolling interval
// (Binance: 5 in any second). A token bucket of rate N/W and burst N is not
// such a window: after a burst of N it lets one more through every W/N, so
// N+1 and more reach the venue inside one W.
//
// A Limiter is a set of buckets and a Classifier
// that says which bucket an outbound frame draws from and how many tokens
// it costs. A Limiter is safe for concurrent use and is meant to be shared
// where the venue's limit is shared: give the same *Limiter to every client
// of one Deribit sub-account, and the same connection Limiter (see
// BinanceConnections) to every client dialling from one IP. Where the limit
// is per connection (Binance's 5 messages/s), give each client its own.
//
// Three ways to take tokens, matching what the client needs:
//   - Wait blocks until the frame's tokens are there, within ctx;
//   - Allow takes them only if they are there now;
//   - Charge takes them at once even if that overdraws the bucket (later
//     frames then wait longer): for replies a venue requires at once, such
//     as Deribit's test_request answer or a pong, which are counted but
//     must never be delayed. The debt is bounded by one burst, so that a
//     venue flooding pings cannot lock a client out of its own sends.
//
// A Classifier is user code: a panic in it is recovered and returned as a
// *ClassifierPanicError (matching ErrClassifierPanicked); the frame is then
// refused by Wait and Allow, and let through uncounted by Charge.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenws/zenws/actors/jsonrpc"
)

// ErrRateLimited is returned (wrapped) when a frame cannot have its tokens:
// at once under the reject policy, or within the caller's deadline under
// the wait policy, or never because it costs more than the bucket holds.
// actors.ErrRateLimited is the same value.
var ErrRateLimited = errors.New("zenws: rate limited")

// ErrClassifierPanicked matches every *ClassifierPanicError.
var ErrClassifierPanicked = errors.New("zenws: rate-limit classifier panicked")

// ClassifierPanicError is a Classifier that panicked while pricing a frame.
// Nothing was sent for a frame refused with it.
type ClassifierPanicError struct {
	Limiter string // the Limiter's name
	Value   any    // what the classifier panicked with
}

// Error implements the error interface.
func (e *ClassifierPanicError) Error() string {
	return fmt.Sprintf("zenws: ratelimit %q: the classifier panicked: %v", e.Limiter, e.Value)
}

// Is makes errors.Is(err, ErrClassifierPanicked) true.
func (e *ClassifierPanicError) Is(target error) bool { return target == ErrClassifierPanicked }

// Bucket is one token bucket: Rate tokens per second refill it up to Burst;
// or, when Window is set, a sliding window: at most Burst tokens in any
// interval of length Window.
type Bucket struct {
	Name  string
	Rate  float64 // tokens per second; for a window, 0 (New sets Burst/Window, the sustained rate)
	Burst int     // the most tokens the bucket holds; for a window, the most tokens in any Window

	// Window, when above 0, makes the bucket a sliding window, the way a
	// venue counts "N messages per W": however frames are spread, no
	// interval of length Window holds more than Burst tokens taken by
	// Wait, Try and Allow (charges, which are never delayed, can overdraw
	// it; see Charge). Zero (the default): a token bucket.
	Window time.Duration
}

// Frame is what a Classifier prices: an outbound data message, or a control
// frame (a ping or a pong) when Control is set.
type Frame struct {
	Data    []byte
	Control bool
}

// Classifier returns the index of the bucket a frame draws from and its cost
// in tokens. A cost of 0 lets the frame through free.
type Classifier func(f Frame) (bucket int, tokens int)

// A ContextClassifier is a Classifier that may wait before it prices a
// frame: for a slot granted elsewhere, say (balancer/cluster/budget's
// shared dial budget). Wait and WaitFor give it their ctx; it should
// return soon after ctx ends, and the frame is then refused with ctx's
// error, whatever it returned. Try, Allow and Charge give it
// context.Background(): a ContextClassifier that waits makes them wait too.
type ContextClassifier func(ctx context.Context, f Frame) (bucket int, tokens int)

// Limiter paces frames through a set of buckets. The zero value is not
// usable; create one with New or a preset.
type Limiter struct {
	name     string
	buckets  []*rate.Limiter // nil where the bucket is a window
	windows  []*window       // nil where the bucket is a token bucket
	specs    []Bucket
	classify Classifier
	// classifyCtx, when set (NewContext), is asked instead of classify.
	classifyCtx ContextClassifier

	allowed  atomic.Uint64
	waited   atomic.Uint64
	waitNs   atomic.Int64
	rejected atomic.Uint64
	charged  atomic.Uint64
	forgiven atomic.Uint64
	panics   atomic.Uint64
}

// Stats counts what a Limiter let through and held back, over its life.
type Stats struct {
	Allowed  uint64        // frames that found their tokens without waiting
	Waited   uint64        // frames that waited for their tokens
	WaitTime time.Duration // total time spent waiting
	Rejected uint64        // frames refused (ErrRateLimited)
	Charged  uint64        // frames counted without delay (heartbeat replies, pongs)
	// Forgiven counts the charged frames that took no tokens because
	// their bucket was already a whole burst in debt (a flood of pings).
	Forgiven uint64
	// ClassifierPanics counts frames whose Classifier panicked.
	ClassifierPanics uint64
}

// New returns a Limiter over buckets, pricing frames with classify. A nil
// classify charges one token from bucket 0 for every data frame and lets
// control frames through free.
func New(name string, classify Classifier, buckets ...Bucket) (*Limiter, error) {
	if len(buckets) == 0 {
		return nil, fmt.Errorf("zenws: ratelimit %q: no buckets", name)
	}
	l := &Limiter{name: name, classify: classify, specs: append([]Bucket(nil), buckets...)}
	for i, b := range buckets {
		if b.Window != 0 {
			if b.Window < 0 || b.Rate != 0 || b.Burst < 1 {
				return nil, fmt.Errorf("zenws: ratelimit %q: bucket %d (%s): a window must be > 0, with rate 0 and burst >= 1, got window %v, rate %v, burst %d", name, i, b.Name, b.Window, b.Rate, b.Burst)
			}
			l.specs[i].Rate = float64(b.Burst) / b.Window.Seconds()
			l.buckets = append(l.buckets, nil)
			l.windows = append(l.windows, newWindow(b.Window, b.Burst))
			continue
		}
		if !(b.Rate > 0) || b.Burst < 1 {
			return nil, fmt.Errorf("zenws: ratelimit %q: bucket %d (%s): rate must be > 0 and burst >= 1, got %v and %d", name, i, b.Name, b.Rate, b.Burst)
		}
		l.buckets = append(l.buckets, rate.NewLimiter(rate.Limit(b.Rate), b.Burst))
		l.windows = append(l.windows, nil)
	}
	if l.classify == nil {
		l.classify = func(f Frame) (int, int) {
			if f.Control {
				return 0, 0
			}
			return 0, 1
		}
	}
	return l, nil
}

// NewContext is New with a ContextClassifier. A nil classify prices as
// New's default does.
func NewContext(name string, classify ContextClassifier, buckets ...Bucket) (*Limiter, error) {
	l, err := New(name, nil, buckets...)
	if err != nil {
		return nil, err
	}
	l.classifyCtx = classify
	return l, nil
}

// Simple returns a Limiter of one bucket: perSecond frames a second with
// bursts of burst; control frames are free. It panics when perSecond <= 0
// or burst < 1 (a programming error); use New to get an error instead.
func Simple(perSecond float64, burst int) *Limiter {
	return must(New("simple", nil, Bucket{Name: "messages", Rate: perSecond, Burst: burst}))
}

func must(l *Limiter, err error) *Limiter {
	if err != nil {
		panic(err)
	}
	return l
}

// Name is the name the Limiter was created with.
func (l *Limiter) Name() string { return l.name }

// Buckets returns the Limiter's bucket specifications.
func (l *Limiter) Buckets() []Bucket { return append([]Bucket(nil), l.specs...) }

// Tokens returns the tokens bucket i holds now (negative when overdrawn by
// Charge); for a window, Burst less the tokens taken or reserved in the
// last Window.
func (l *Limiter) Tokens(i int) float64 {
	if w := l.windows[i]; w != nil {
		return w.tokens(time.Now())
	}
	return l.buckets[i].Tokens()
}

// Stats returns the Limiter's counters.
func (l *Limiter) Stats() Stats {
	return Stats{
		Allowed:  l.allowed.Load(),
		Waited:   l.waited.Load(),
		WaitTime: time.Duration(l.waitNs.Load()),
		Rejected: l.rejected.Load(),
		Charged:  l.charged.Load(),
		Forgiven: l.forgiven.Load(),

		ClassifierPanics: l.panics.Load(),
	}
}

// classifyFrame runs the Classifier, turning a panic into an error.
func (l *Limiter) classifyFrame(ctx context.Context, f Frame) (i, n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.panics.Add(1)
			err = &ClassifierPanicError{Limiter: l.name, Value: r}
		}
	}()
	if l.classifyCtx != nil {
		i, n = l.classifyCtx(ctx, f)
		return i, n, nil
	}
	i, n = l.classify(f)
	return i, n, nil
}

// price returns the bucket a frame draws from and its cost; -1 when the
// frame is free.
func (l *Limiter) price(ctx context.Context, f Frame) (int, int, error) {
	i, n, err := l.classifyFrame(ctx, f)
	if err != nil {
		return -1, 0, err
	}
	if n < 0 { // a Classifier bug: refused, never sent free
		return -1, 0, fmt.Errorf("zenws: ratelimit %q: classifier priced a frame at %d tokens", l.name, n)
	}
	if n == 0 {
		return -1, 0, nil
	}
	if i < 0 || i >= len(l.buckets) {
		return -1, 0, fmt.Errorf("zenws: ratelimit %q: classifier chose bucket %d of %d", l.name, i, len(l.buckets))
	}
	if n > l.specs[i].Burst {
		return -1, 0, fmt.Errorf("%w: a frame costing %d tokens can never fit bucket %q (burst %d)", ErrRateLimited, n, l.specs[i].Name, l.specs[i].Burst)
	}
	return i, n, nil
}

// Wait takes the frame's tokens, waiting for them as long as ctx allows. When
// ctx's deadline comes before the tokens would, it returns at once with an
// error wrapping ErrRateLimited and takes nothing; when ctx is cancelled
// while waiting, the error wraps ctx's error.
func (l *Limiter) Wait(ctx context.Context, f Frame) error {
	_, err := l.WaitFor(ctx, f)
	return err
}

// WaitFor is Wait that also returns how long it waited for the tokens (and
// in a ContextClassifier).
func (l *Limiter) WaitFor(ctx context.Context, f Frame) (time.Duration, error) {
	if l.classifyCtx == nil {
		return l.waitFor(ctx, f)
	}
	start := time.Now()
	_, err := l.waitFor(ctx, f)
	return time.Since(start), err
}

func (l *Limiter) waitFor(ctx context.Context, f Frame) (time.Duration, error) {
	i, n, err := l.price(ctx, f)
	if err == nil && l.classifyCtx != nil && ctx.Err() != nil {
		// The classifier's own wait ended with ctx: nothing is taken.
		err = fmt.Errorf("zenws: waiting for %s: %w", l.name, context.Cause(ctx))
	}
	if err != nil {
		l.rejected.Add(1)
		return 0, err
	}
	if i < 0 {
		return 0, nil
	}
	if w := l.windows[i]; w != nil {
		return l.waitWindow(ctx, w, n)
	}
	b := l.buckets[i]
	now := time.Now()
	r := b.ReserveN(now, n)
	delay := r.DelayFrom(now)
	if delay == 0 {
		l.allowed.Add(1)
		return 0, nil
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(now.Add(delay)) {
		r.CancelAt(now)
		l.rejected.Add(1)
		return 0, fmt.Errorf("%w: %s needs %v more, past the deadline", ErrRateLimited, l.name, delay.Round(time.Millisecond))
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		l.waited.Add(1)
		l.waitNs.Add(int64(delay))
		return delay, nil
	case <-ctx.Done():
		r.Cancel()
		l.rejected.Add(1)
		return time.Since(now), fmt.Errorf("zenws: waiting for %s: %w", l.name, context.Cause(ctx))
	}
}

// waitWindow is WaitFor on a window. When it wakes it checks its window
// again: its timer fired late, or a charge (a pong) put in meanwhile filled
// the window, and then it waits more (at most windowRounds times, so that
// a flood of charges cannot starve it; Charge bounds that flood's debt).
const windowRounds = 4

func (l *Limiter) waitWindow(ctx context.Context, w *window, n int) (time.Duration, error) {
	now := time.Now()
	delay, id := w.reserve(now, n)
	if delay == 0 {
		l.allowed.Add(1)
		return 0, nil
	}
	refuse := func(d time.Duration) (time.Duration, error) {
		w.cancel(id)
		l.rejected.Add(1)
		return 0, fmt.Errorf("%w: %s needs %v more, past the deadline", ErrRateLimited, l.name, d.Round(time.Millisecond))
	}
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline && dl.Before(now.Add(delay)) {
		return refuse(delay)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for round := 1; ; round++ {
		select {
		case <-t.C:
		case <-ctx.Done():
			w.cancel(id)
			l.rejected.Add(1)
			return time.Since(now), fmt.Errorf("zenws: waiting for %s: %w", l.name, context.Cause(ctx))
		}
		woke := time.Now()
		more := time.Duration(0)
		if round < windowRounds {
			more = w.confirm(woke, id, n)
		}
		if more == 0 {
			waited := woke.Sub(now)
			l.waited.Add(1)
			l.waitNs.Add(int64(waited))
			return waited, nil
		}
		if hasDeadline && dl.Before(woke.Add(more)) {
			return refuse(more)
		}
		t.Reset(more)
	}
}

// Try takes the frame's tokens if the bucket holds them now: nil when it
// did, an error wrapping ErrRateLimited when not, or the error that kept
// the frame from being priced (a *ClassifierPanicError).
func (l *Limiter) Try(f Frame) error {
	i, n, err := l.price(context.Background(), f)
	if err != nil {
		l.rejected.Add(1)
		return err
	}
	if l.take(time.Now(), i, n) {
		l.allowed.Add(1)
		return nil
	}
	l.rejected.Add(1)
	return fmt.Errorf("%w: %s has no tokens now", ErrRateLimited, l.name)
}

// Allow takes the frame's tokens if the bucket holds them now and reports
// whether it did.
func (l *Limiter) Allow(f Frame) bool { return l.allowAt(time.Now(), f) }

// take takes n tokens of bucket i (-1: free) at now if it holds them.
func (l *Limiter) take(now time.Time, i, n int) bool {
	switch {
	case i < 0:
		return true
	case l.windows[i] != nil:
		return l.windows[i].allow(now, n)
	}
	return l.buckets[i].AllowN(now, n)
}

func (l *Limiter) allowAt(now time.Time, f Frame) bool {
	i, n, err := l.price(context.Background(), f)
	if err != nil {
		l.rejected.Add(1)
		return false
	}
	if l.take(now, i, n) {
		l.allowed.Add(1)
		return true
	}
	l.rejected.Add(1)
	return false
}

// Charge takes the frame's tokens at once, overdrawing the bucket if it
// must: the frame goes out now and later frames wait for the debt. The debt
// is bounded: once a bucket is a whole burst in debt, further charges take
// nothing (counted in Stats.Forgiven), so the longest wait a charge can
// cause a later frame is about two bursts' refill; for a window, a charge
// is refused tokens once the last Window holds two Bursts, so a later frame
// waits at most about one Window. The error
// says the frame could not be priced (a *ClassifierPanicError, or a bucket
// index out of range); the frame goes out anyway, uncounted.
func (l *Limiter) Charge(f Frame) error {
	i, n, err := l.price(context.Background(), f)
	if err != nil || i < 0 {
		if errors.Is(err, ErrRateLimited) {
			return nil // costs more than a burst: never countable, goes out uncounted
		}
		return err
	}
	l.charged.Add(1)
	now := time.Now()
	if w := l.windows[i]; w != nil {
		if w.charge(now, n) {
			l.forgiven.Add(1)
		}
		return nil
	}
	b := l.buckets[i]
	if b.TokensAt(now)-float64(n) < -float64(b.Burst()) {
		l.forgiven.Add(1)
		return nil
	}
	b.ReserveN(now, n) // kept: the tokens are spent
	return nil
}

// method returns the JSON-RPC method of a frame, or "" when it has none.
func method(data []byte) string {
	env, ok := jsonrpc.Peek(data)
	if !ok {
		return ""
	}
	m, _ := jsonrpc.String(env.Method)
	return m
}
