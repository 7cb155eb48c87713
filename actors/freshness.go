package actors

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/venue"
)

// Freshness (issue 15, docs/market-data.md): a channel that stays open but
// stops delivering. Heartbeats prove the peer alive, not the feed: a
// FreshnessRule says how long a wanted channel may stay silent on the live
// connection. Past it the channel is subscribed again, alone, and a gap
// notice (GapStale) goes in the stream; if it stays silent for as long
// again after the venue confirmed that subscribe, the connection is taken
// as stalled and replaced (a planned rotation: make before break), at most
// once per connection and, when stalls follow each other, no sooner than
// a doubling wait after the last rotation (1 s, up to MaxBackoff).

// FreshnessRule says how long the channels matching Pattern (venue.Match:
// '*' matches any run of bytes) may stay silent. A channel's clock starts
// when it is active on the live connection and restarts with each of its
// notifications.
type FreshnessRule struct {
	Pattern    string
	MaxSilence time.Duration
}

// WithFreshness adds a freshness rule (Config.Freshness): channels
// matching pattern may stay silent at most maxSilence (at least 10 ms). A
// channel takes the first rule it matches; at most 64 rules.
func WithFreshness(pattern string, maxSilence time.Duration) Option {
	return func(c *Config) {
		c.Freshness = append(c.Freshness[:len(c.Freshness):len(c.Freshness)], FreshnessRule{Pattern: pattern, MaxSilence: maxSilence})
	}
}

// Bounds of the freshness rules.
const (
	maxFreshnessRules = 64
	minSilence        = 10 * time.Millisecond
)

// validateMarketData checks the freshness rules.
func (cfg Config) validateMarketData(bad func(field, problem string)) {
	if len(cfg.Freshness) > maxFreshnessRules {
		bad("Freshness", fmt.Sprintf("at most %d rules, got %d", maxFreshnessRules, len(cfg.Freshness)))
	}
	for i, r := range cfg.Freshness {
		if r.Pattern == "" || len(r.Pattern) > maxChannelName {
			bad("Freshness", fmt.Sprintf("rule %d: a pattern must have 1 to %d bytes, got %d", i, maxChannelName, len(r.Pattern)))
		}
		if r.MaxSilence < minSilence {
			bad("Freshness", fmt.Sprintf("rule %d: MaxSilence must be at least %v, got %v", i, minSilence, r.MaxSilence))
		}
	}
}

// freshState is one live channel's freshness clock on one connection.
type freshState struct {
	gen     uint64
	rule    int       // index in Config.Freshness; -1: no rule
	base    time.Time // the clock's start on this connection: when first seen active, or a resubscribe's confirmation
	resubAt time.Time // when it was subscribed again for silence; zero: not
	stalled bool      // the connection was reported stalled for it
}

// confirmed restarts the clock of a channel subscribed again.
func (fs *freshState) confirmed(now time.Time) {
	if !fs.resubAt.IsZero() {
		fs.base = now
	}
}

// guardTick is the guard's timer: resyncs due and freshness.
type guardTick struct{}

var guardTickMsg = &guardTick{}

// armGuard arms the guard's timer when something needs watching: a
// freshness rule (every quarter of the shortest MaxSilence, 10 ms to 1 s),
// or a resync under way (every 100 ms).
func (a *clientActor) armGuard() {
	if a.d.extra == nil || a.d.extra.seq == nil {
		return
	}
	g := a.d.extra.seq
	var every time.Duration
	for _, r := range a.cfg.Freshness {
		if q := r.MaxSilence / 4; every == 0 || q < every {
			every = q
		}
	}
	if every != 0 {
		every = min(max(every, 10*time.Millisecond), time.Second)
	}
	if g.resyncsPending() && (every == 0 || every > 100*time.Millisecond) {
		every = 100 * time.Millisecond
	}
	if every == 0 {
		return
	}
	at := time.Now().Add(every)
	if !g.armed.IsZero() && g.armed.Before(at) {
		return // an earlier tick comes
	}
	if g.timer != nil {
		g.timer.Stop()
	}
	d := a.d
	g.armed = at
	g.timer = time.AfterFunc(every, func() {
		if !d.isStopped() {
			d.sys.Root.Send(d.pid, guardTickMsg)
		}
	})
}

// stopGuard stops the guard's timer (the client stops).
func (a *clientActor) stopGuard() {
	if a.d.extra != nil && a.d.extra.seq != nil && a.d.extra.seq.timer != nil {
		a.d.extra.seq.timer.Stop()
		a.d.extra.seq.armed = time.Time{}
	}
}

// tick runs the guard's checks and arms it again.
func (a *clientActor) tick() {
	if a.d.extra == nil || a.d.extra.seq == nil {
		return
	}
	a.d.extra.seq.armed = time.Time{}
	now := time.Now()
	a.checkResyncs(now)
	a.checkFreshness(now)
	a.armGuard()
}

// silentChannel is a live channel with its last notification, as the
// intent reports it.
type silentChannel struct {
	ch   string
	last time.Time
}

// checkFreshness resubscribes the channels silent past their rule and
// reports a stalled connection.
func (a *clientActor) checkFreshness(now time.Time) {
	if len(a.cfg.Freshness) == 0 || a.live() == nil {
		return
	}
	g := a.d.extra.seq
	if g.fresh == nil {
		g.fresh = map[string]*freshState{}
	}
	live := g.liveBuf[:0]
	a.d.intent.live(func(ch string, last time.Time) { live = append(live, silentChannel{ch, last}) })
	defer func() { clear(live); g.liveBuf = live[:0] }() // kept for the next tick, its names released
	for _, c := range live {
		fs := g.fresh[c.ch]
		if fs == nil || fs.gen != a.gen {
			fs = &freshState{gen: a.gen, rule: a.cfg.freshnessRule(c.ch), base: now}
			g.fresh[c.ch] = fs
		}
		if fs.rule < 0 {
			continue
		}
		since := fs.base
		if c.last.After(since) {
			since = c.last
		}
		if now.Sub(since) <= a.cfg.Freshness[fs.rule].MaxSilence {
			continue
		}
		switch {
		case fs.resubAt.IsZero() || c.last.After(fs.resubAt): // silent: subscribe it again
			a.staleChannel(c.ch, fs, now)
		case !fs.stalled: // still silent after that: the connection is stalled
			fs.stalled = true
			a.stalled(c.ch)
		}
	}
	if len(g.fresh) > 2*len(live)+64 { // channels gone: forget their clocks
		keep := make(map[string]bool, len(live))
		for _, c := range live {
			keep[c.ch] = true
		}
		for ch := range g.fresh {
			if !keep[ch] {
				delete(g.fresh, ch)
			}
		}
	}
}

// freshnessRule is the index of the first rule ch matches, or -1.
func (c *Config) freshnessRule(ch string) int {
	for i, r := range c.Freshness {
		if venue.Match(r.Pattern, ch) {
			return i
		}
	}
	return -1
}

// staleChannel subscribes a silent channel again and says so in the
// stream; a sequenced channel starts again from its next update.
func (a *clientActor) staleChannel(ch string, fs *freshState, now time.Time) {
	fs.resubAt, fs.base = now, now
	a.d.rareCounts().staleResubscribes.Add(1)
	a.d.log.Info("a channel stayed silent past its freshness bound: subscribing it again", zap.String("channel", ch))
	in := &Inbound{Channel: ch, Generation: a.gen, Received: now}
	st := a.d.extra.seq.chans[ch]
	if st == nil {
		st = &chanSeq{} // a notice with Expected 0
	}
	a.gap(in, st, GapStale, 0)
	resubscribing := a.d.intent.resubscribe(ch)
	if a.d.extra.seq.chans[ch] == nil || st.state != seqLive {
		return // not sequenced, or being resynced already
	}
	// A sequenced channel starts again after the notice: from the
	// resubscribe's snapshot (an update of the old subscription still on
	// its way is dropped), or for a venue without snapshots from the first
	// update once the venue confirmed the subscribe; a delta stream from
	// the user's snapshot, fetched with its next update.
	st.has = false
	st.dropHeld(a.d.extra.seq)
	if st.mode != venue.ResyncSnapshot {
		st.state, st.started, st.confirmed = seqResubscribing, now, !resubscribing
		a.d.intent.setResyncing(ch, true)
		a.armGuard()
	}
}

// stalled replaces the live connection: a channel stayed silent after it
// was subscribed again while the connection answers its heartbeats.
func (a *clientActor) stalled(ch string) {
	g := a.d.extra.seq
	if g.stallGen == a.gen {
		return // once per connection
	}
	g.stallGen = a.gen
	now := time.Now()
	if !g.lastStall.IsZero() && now.Sub(g.lastStall) < a.cfg.StableAfter {
		g.stallStreak++
	} else {
		g.stallStreak = 1
	}
	g.lastStall = now
	a.d.rareCounts().stalls.Add(1)
	if a.phase != phaseLive {
		return // a rotation is under way already
	}
	wait := time.Until(a.lastRotation.Add(backoffCap(g.stallStreak, noticeGap, max(a.cfg.MaxBackoff, noticeGap))))
	a.d.log.Warn("a channel stayed silent after it was subscribed again: the connection is stalled, replacing it",
		zap.String("channel", ch), zap.Duration("in", max(wait, 0)))
	if wait <= 0 {
		a.startRotation(&rotateNow{gen: a.gen})
		return
	}
	a.rotateAfter(wait)
}
