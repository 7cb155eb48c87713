package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/transport"
)

// Subscriptions are intent (ARCHITECTURE.md, "Semantics that are
// decided"): Subscribe and Unsubscribe change the wanted set at once, in any
// state, and the client converges every connection to it. This file holds
// the wanted set, what each connection has applied, the convergence (the
// restore of a new connection included) and the retries of what a venue
// refused.
//
// Who runs what:
//   - a connection in its connect pipeline (or a rotation's new one) is
//     converged by the setup goroutine, before the client reports it
//     connected (restore);
//   - the live connection is converged by one worker goroutine per client,
//     woken by a change of the wanted set, a new live connection or a retry
//     that falls due (a timer): nothing polls;
//   - the actor opens, promotes and closes sessions (one per connection
//     generation).

// ChannelState is where one wanted channel stands on the current
// connection (Health.Channels).
type ChannelState int

// Channel states.
const (
	// ChannelPending: wanted, not confirmed yet (no connection, or its
	// request is on its way).
	ChannelPending ChannelState = iota + 1
	// ChannelActive: confirmed by the venue on the current connection.
	ChannelActive
	// ChannelFailed: the venue refused it (or its request failed) on the
	// current connection; retried with backoff at NextRetry.
	ChannelFailed
	// ChannelStale: it was active on an earlier connection and is not yet
	// restored on the current one (a reconnect or restart is under way).
	ChannelStale
	// ChannelResyncing: active, but its sequence broke (a KindGap was
	// delivered) and the client is putting it back in sync; its
	// notifications are held or dropped until it is (docs/market-data.md).
	ChannelResyncing
)

// String returns "pending", "active", "failed", "stale" or "resyncing".
func (s ChannelState) String() string {
	switch s {
	case ChannelPending:
		return "pending"
	case ChannelActive:
		return "active"
	case ChannelFailed:
		return "failed"
	case ChannelStale:
		return "stale"
	case ChannelResyncing:
		return "resyncing"
	}
	return fmt.Sprintf("ChannelState(%d)", int(s))
}

// ChannelStatus is one channel of Health.Channels: a wanted channel, or one
// the client wants gone whose unsubscribe the venue refused (Wanted false,
// State ChannelFailed).
type ChannelStatus struct {
	Channel string
	State   ChannelState
	Wanted  bool      // in the wanted set (false: an unsubscribe still to be applied)
	Since   time.Time // when it entered State
	// Err is why it failed (State ChannelFailed), redacted; nil otherwise.
	Err error
	// NextRetry is when a failed channel is asked for again; zero otherwise.
	NextRetry time.Time
	// Attempts counts the failed requests for it on the current connection.
	Attempts int
	// LastMessage is when its last notification arrived (any connection);
	// zero before the first.
	LastMessage time.Time
}

// Bounds of the wanted set: channel names come from user code and venues
// (a listen key), and the set is kept for the client's whole life.
const (
	maxWanted      = 1 << 16 // channels
	maxChannelName = 1024    // bytes
)

// errNotConfirmed is a channel the venue answered for without confirming.
var errNotConfirmed = errors.New("zenws: the venue did not confirm the channel")

// want is one wanted channel.
type want struct {
	seq        uint64    // order of Subscribe calls: requests keep the user's order
	since      time.Time // of its current state, for ChannelStatus.Since
	wasActive  bool      // confirmed on some connection: a missing one is stale, not pending
	lastMsg    time.Time
	lastSeenOn ChannelState // the state last reported, to stamp since on a change
}

// failure is a refused subscribe or unsubscribe of one channel on one
// connection.
type failure struct {
	err      error
	at       time.Time
	next     time.Time
	attempts int
}

// subSession is what one connection generation has applied.
type subSession struct {
	conn     *transport.Conn
	gen      uint64
	applied  map[string]bool     // confirmed on this connection
	inflight map[string]bool     // a request for it is on its way
	failed   map[string]*failure // refused on this connection, retried at next
	// resub are applied channels to subscribe again, alone: unsubscribed
	// first, then subscribed (a resync: sequence.go); made on first use.
	resub  map[string]bool
	setup  bool // in its connect pipeline: the setup goroutine converges it
	closed bool
}

// ensure makes ss's maps (reads of nil maps are fine; writes are not).
func (ss *subSession) ensure() {
	if ss.applied == nil {
		ss.applied, ss.inflight, ss.failed = map[string]bool{}, map[string]bool{}, map[string]*failure{}
	}
}

// intent is the wanted set and the sessions: it lives in the durable state,
// so the set survives reconnects and restarts.
type intent struct {
	mu       sync.Mutex
	wanted   map[string]*want
	sessions []*subSession // open ones: the primary and, during a rotation, its replacement
	primary  *subSession   // the live connection's (or, before it is live, the one being set up)
	changed  chan struct{} // closed and replaced on every change a waiter could wait for
	// d is the client: signal asks its actor to publish (a status or
	// Degraded changed, notifyActor), and d.wake gets the live connection
	// converged; nil: neither (an intent of no client).
	d       *durable
	seq     uint64
	version uint64 // bumped by signal: every change of wanted, applied or primary
	degMemo uint64 // version+1 when degVal was computed; 0: never
	cntMemo uint64 // version+1 when cntVal was computed; 0: never
	cntVal  ChannelCounts

	cancel context.CancelFunc // ends the worker's requests (the client stops)
	retry  *time.Timer        // wakes the worker when the next refused channel is due

	// Resyncs (sequence.go): channels being put back in sync, and those
	// unsubscribed for a resubscribe whose subscribe is still to be
	// confirmed; made on first use.
	resyncing map[string]bool
	resubWait map[string]bool

	// The flags, side by side (apart, each would take a word).
	degVal  bool
	running bool // the worker goroutine runs
	again   bool // something changed while it ran: one more round
	stopped bool // the client stopped: no worker starts again
}

// newIntent returns an empty intent. Its maps and channels are made on
// first use: a client that never subscribes pays for none of them.
func newIntent() *intent { return &intent{} }

// signal wakes waiters and asks for a publish; with s.mu held. Every
// change of the wanted set, of what a session applied or of the primary
// session calls it.
func (s *intent) signal() {
	s.version++
	if s.changed != nil { // made by the first waiter
		close(s.changed)
		s.changed = nil
	}
	if s.d != nil {
		s.d.notifyActor()
	}
}

// wake gets the live connection converged (durable.wake); without s.mu.
func (s *intent) wake() {
	if s.d != nil {
		s.d.wake()
	}
}

// count is how many channels are wanted.
func (s *intent) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wanted)
}

// list returns the wanted set, sorted.
func (s *intent) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.wanted))
}

// stateOf is ch's state on the primary session; with s.mu held.
func (s *intent) stateOf(ch string, w *want) (ChannelState, *failure) {
	p := s.primary
	switch {
	case p != nil && p.failed[ch] != nil && !p.inflight[ch] && !p.applied[ch]:
		return ChannelFailed, p.failed[ch] // a resubscribe the venue refused shows as such
	case p != nil && s.resyncing[ch]:
		return ChannelResyncing, nil
	case p != nil && p.applied[ch]:
		return ChannelActive, nil
	case p != nil && p.failed[ch] != nil && !p.inflight[ch]:
		return ChannelFailed, p.failed[ch]
	case w != nil && w.wasActive:
		return ChannelStale, nil
	}
	return ChannelPending, nil
}

// statuses returns Health.Channels, sorted by channel.
func (s *intent) statuses(scrub func(error) error) []ChannelStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.wanted) == 0 && (s.primary == nil || len(s.primary.failed) == 0) {
		return nil
	}
	out := make([]ChannelStatus, 0, len(s.wanted))
	for ch, w := range s.wanted {
		st, f := s.stateOf(ch, w)
		if st != w.lastSeenOn { // a change not stamped yet (a new connection)
			w.lastSeenOn, w.since = st, time.Now()
		}
		cs := ChannelStatus{Channel: ch, State: st, Wanted: true, Since: w.since, LastMessage: w.lastMsg}
		if f != nil {
			cs.Err, cs.NextRetry, cs.Attempts = scrub(f.err), f.next, f.attempts
		}
		out = append(out, cs)
	}
	if p := s.primary; p != nil {
		for ch, f := range p.failed {
			if _, ok := s.wanted[ch]; !ok && p.applied[ch] {
				out = append(out, ChannelStatus{Channel: ch, State: ChannelFailed, Since: f.at,
					Err: scrub(f.err), NextRetry: f.next, Attempts: f.attempts})
			}
		}
	}
	slices.SortFunc(out, func(a, b ChannelStatus) int { return cmp.Compare(a.Channel, b.Channel) })
	return out
}

// ChannelCounts counts a client's channels by state: what Health.Channels
// lists, without the list (Client.ChannelCounts, and Health.ChannelCounts
// of a client on another node of a cluster pool).
type ChannelCounts struct {
	Total     int // every channel Health.Channels would list
	Active    int
	Pending   int
	Failed    int // refused subscribes, and unsubscribes the venue refused
	Stale     int
	Resyncing int
}

// add counts one channel in state st.
func (c *ChannelCounts) add(st ChannelState) {
	c.Total++
	switch st {
	case ChannelActive:
		c.Active++
	case ChannelPending:
		c.Pending++
	case ChannelFailed:
		c.Failed++
	case ChannelStale:
		c.Stale++
	case ChannelResyncing:
		c.Resyncing++
	}
}

// counts returns the channels counted by state, as statuses would list
// them. The answer is kept until the next change (signal), like degraded's.
func (s *intent) counts() ChannelCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cntMemo == s.version+1 {
		return s.cntVal
	}
	var c ChannelCounts
	for ch, w := range s.wanted {
		st, _ := s.stateOf(ch, w)
		c.add(st)
	}
	if p := s.primary; p != nil {
		for ch := range p.failed {
			if _, ok := s.wanted[ch]; !ok && p.applied[ch] {
				c.add(ChannelFailed)
			}
		}
	}
	s.cntMemo, s.cntVal = s.version+1, c
	return c
}

// degraded reports whether a wanted channel is not active on the primary
// session. Every health push asks it: the answer is kept until the next
// change (signal), so a push costs a scan of the wanted set only after a
// change, and none between (heartbeats, counters).
func (s *intent) degraded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.degMemo == s.version+1 {
		return s.degVal
	}
	p, deg := s.primary, len(s.resyncing) > 0
	for ch := range s.wanted {
		if deg || p == nil || !p.applied[ch] {
			deg = true
			break
		}
	}
	s.degMemo, s.degVal = s.version+1, deg
	return deg
}

// seen stamps a notification of ch (Health.Channels[].LastMessage) and
// reports whether ch is wanted.
func (s *intent) seen(ch string, at time.Time) bool {
	s.mu.Lock()
	w := s.wanted[ch]
	if w != nil {
		w.lastMsg = at
	}
	s.mu.Unlock()
	return w != nil
}

// wants reports whether ch is wanted.
func (s *intent) wants(ch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wanted[ch] != nil
}

// resubscribe has the live connection subscribe ch again, alone: an
// unsubscribe, then a subscribe (a resync, sequence.go; a silent channel,
// freshness.go). It reports false when ch is not active on the live
// connection (nothing to do: a restore will subscribe it).
func (s *intent) resubscribe(ch string) bool {
	s.mu.Lock()
	p := s.primary
	if p == nil || p.setup || p.closed || !p.applied[ch] || s.wanted[ch] == nil {
		s.mu.Unlock()
		return false
	}
	if p.resub == nil {
		p.resub = map[string]bool{}
	}
	p.resub[ch] = true
	s.signal()
	s.mu.Unlock()
	s.wake()
	return true
}

// setResyncing marks ch as being put back in sync (ChannelResyncing), or
// not.
func (s *intent) setResyncing(ch string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on == s.resyncing[ch] {
		return
	}
	if on {
		if s.resyncing == nil {
			s.resyncing = map[string]bool{}
		}
		s.resyncing[ch] = true
	} else {
		delete(s.resyncing, ch)
	}
	s.signal()
}

// live calls fn for every wanted channel active on the live connection
// (and not being subscribed again), with its last notification's time. It
// holds s.mu while it runs: fn must not call s.
func (s *intent) live(fn func(ch string, lastMsg time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.primary
	if p == nil || p.setup {
		return
	}
	for ch, w := range s.wanted {
		if p.applied[ch] && !p.resub[ch] {
			fn(ch, w.lastMsg)
		}
	}
}

// checkChannels is the input check of Subscribe and Unsubscribe.
func checkChannels(channels []string) error {
	if len(channels) == 0 {
		return fmt.Errorf("%w: no channels", ErrInvalidRequest)
	}
	for _, ch := range channels {
		if ch == "" || len(ch) > maxChannelName {
			return fmt.Errorf("%w: a channel name must have 1 to %d bytes, got %d", ErrInvalidRequest, maxChannelName, len(ch))
		}
		if !utf8.ValidString(ch) {
			return fmt.Errorf("%w: a channel name must be valid UTF-8, got %q", ErrInvalidRequest, ch)
		}
	}
	return nil
}

// want adds channels to the wanted set at once. A channel that failed on
// the current connection is asked for again now: a user's Subscribe is a
// retry.
func (s *intent) want(channels []string) error {
	s.mu.Lock()
	defer s.wake() // after the unlock: it takes s.mu
	defer s.mu.Unlock()
	added := 0
	for _, ch := range channels {
		if _, ok := s.wanted[ch]; !ok {
			added++
		}
	}
	if len(s.wanted)+added > maxWanted {
		return fmt.Errorf("%w: %d channels would be wanted, at most %d", ErrInvalidRequest, len(s.wanted)+added, maxWanted)
	}
	now := time.Now()
	for _, ch := range channels {
		if _, ok := s.wanted[ch]; !ok {
			s.seq++
			if s.wanted == nil {
				s.wanted = map[string]*want{}
			}
			s.wanted[ch] = &want{seq: s.seq, since: now, lastSeenOn: ChannelPending}
		}
		for _, ss := range s.sessions {
			if f := ss.failed[ch]; f != nil && !ss.applied[ch] {
				delete(ss.failed, ch)
			}
		}
	}
	s.signal()
	return nil
}

// unwant removes channels from the wanted set at once.
func (s *intent) unwant(channels []string) {
	s.mu.Lock()
	defer s.wake() // after the unlock: it takes s.mu
	defer s.mu.Unlock()
	for _, ch := range channels {
		delete(s.wanted, ch)
		delete(s.resyncing, ch) // nothing to put back in sync
		delete(s.resubWait, ch)
		for _, ss := range s.sessions {
			if f := ss.failed[ch]; f != nil && ss.applied[ch] {
				delete(ss.failed, ch) // a refused unsubscribe: try it now
			} else if !ss.applied[ch] {
				delete(ss.failed, ch) // a refused subscribe: no longer wanted
			}
		}
	}
	s.signal()
}

// open registers the session of a new connection, converged by its setup
// goroutine until promote. With restore off, a new connection starts with
// nothing: the wanted channels applied on the connections before are
// forgotten (the user subscribes again, in OnConnect say).
func (s *intent) open(conn *transport.Conn, gen uint64, restore bool) *subSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !restore {
		for ch, w := range s.wanted {
			if w.wasActive {
				delete(s.wanted, ch)
			}
		}
	}
	ss := &subSession{conn: conn, gen: gen, setup: true} // its maps are made on first write (ensure)
	s.sessions = append(s.sessions, ss)
	if s.primary == nil {
		s.primary = ss // a first connect or reconnect: statuses refer to it
	}
	s.signal()
	return ss
}

// session is gen's open session, or nil; with s.mu held.
func (s *intent) session(gen uint64) *subSession {
	for _, ss := range s.sessions {
		if ss.gen == gen {
			return ss
		}
	}
	return nil
}

// promote makes gen's session the live one: the worker converges it from
// now on. Earlier sessions are dropped (their connections are retiring).
func (s *intent) promote(gen uint64) {
	s.mu.Lock()
	defer s.wake() // after the unlock: it takes s.mu
	defer s.mu.Unlock()
	ss := s.session(gen)
	if ss == nil {
		return
	}
	for _, old := range s.sessions {
		if old != ss {
			old.closed = true
		}
	}
	s.sessions = append(s.sessions[:0], ss)
	ss.setup = false
	s.primary = ss
	s.signal()
}

// close drops gen's session: its connection has ended.
func (s *intent) close(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.session(gen)
	if ss == nil {
		return
	}
	ss.closed = true
	s.sessions = slices.DeleteFunc(s.sessions, func(o *subSession) bool { return o == ss })
	if s.primary == ss {
		s.primary = nil
	}
	s.signal()
}

// work is one round of requests for a session: what to subscribe and what
// to unsubscribe now, and when the next refused channel falls due. With
// take, the channels are marked in flight.
func (s *intent) work(ss *subSession, now time.Time, take bool) (add, remove []string, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.closed {
		return nil, nil, time.Time{}
	}
	// Retries fall due in groups (the channels one request had: see
	// settle); a round takes at most maxRetryGroups of them, so that many
	// refusals cannot turn into a burst of requests. The others wait for
	// the next round.
	groups := map[time.Time]bool{}
	later := func(f *failure) {
		if next.IsZero() || f.next.Before(next) {
			next = f.next
		}
	}
	due := func(ch string) bool {
		if ss.inflight[ch] {
			return false
		}
		f := ss.failed[ch]
		switch {
		case f == nil:
			return true
		case f.next.After(now):
			later(f)
			return false
		case groups[f.next]:
			return true
		case len(groups) < maxRetryGroups:
			groups[f.next] = true
			return true
		}
		if take {
			f.next = now.Add(retryRound)
		}
		later(f)
		return false
	}
	for ch := range s.wanted {
		if !ss.applied[ch] && due(ch) {
			add = append(add, ch)
		}
	}
	for ch := range ss.applied {
		if _, ok := s.wanted[ch]; !ok && due(ch) {
			remove = append(remove, ch)
		}
	}
	for ch := range ss.resub {
		if s.wanted[ch] == nil {
			delete(ss.resub, ch) // unwanted since: the removal above unsubscribes it
		} else if !ss.inflight[ch] {
			remove = append(remove, ch)
		}
	}
	if !take {
		return add, remove, next
	}
	slices.SortFunc(add, func(a, b string) int { return cmp.Compare(s.wanted[a].seq, s.wanted[b].seq) })
	slices.Sort(remove)
	if len(add)+len(remove) > 0 {
		ss.ensure()
	}
	for _, ch := range add {
		ss.inflight[ch] = true
	}
	for _, ch := range remove {
		ss.inflight[ch] = true
	}
	return add, remove, next
}

// Bounds of the retries of refused channels: a session holds at most
// maxRetryGroups groups of refused channels (each retried as one batch, at
// one time), and a round asks for at most that many again; the rest wait
// retryRound.
const (
	maxRetryGroups = 8
	retryRound     = time.Second
)

// retryGroups counts the groups of refused channels on ss (channels that
// share a retry time), not counting the channels of except, which are
// being settled.
func retryGroups(ss *subSession, except []string) int {
	skip := make(map[string]bool, len(except))
	for _, ch := range except {
		skip[ch] = true
	}
	times := map[time.Time]bool{}
	for ch, f := range ss.failed {
		if !skip[ch] {
			times[f.next] = true
		}
	}
	return len(times) + 1
}

// settle records the outcome of one request for channels on ss: ok are
// the channels the venue confirmed; the others failed with err (or
// errNotConfirmed when the venue answered without them).
func (s *intent) settle(ss *subSession, op venue.SubscriptionOp, channels, ok []string, err error, backoff func(int) time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range channels {
		delete(ss.inflight, ch)
	}
	if ss.closed {
		s.signal()
		return
	}
	ss.ensure()
	if op == venue.OpUnsubscribe && len(ss.resub) > 0 {
		channels, ok = s.resubscribed(ss, channels, ok)
	}
	now := time.Now()
	for _, ch := range ok {
		delete(ss.failed, ch)
		if op == venue.OpSubscribe {
			ss.applied[ch] = true
			if w := s.wanted[ch]; w != nil {
				w.wasActive = true
			}
			if s.resubWait[ch] {
				delete(s.resubWait, ch)
				if s.d != nil {
					s.d.resubscribed(ch, ss.gen)
				}
			}
		} else {
			delete(ss.applied, ch)
		}
	}
	if len(ok) < len(channels) {
		cause := keptError(err)
		if cause == nil {
			cause = errNotConfirmed
		}
		confirmed := make(map[string]bool, len(ok))
		for _, ch := range ok {
			confirmed[ch] = true
		}
		failed := make([]string, 0, len(channels)-len(ok))
		attempts := 0
		for _, ch := range channels {
			if confirmed[ch] {
				continue
			}
			failed = append(failed, ch)
			if f := ss.failed[ch]; f != nil {
				attempts = max(attempts, f.attempts)
			}
		}
		// The channels refused together are asked for again together, at
		// one time: a venue that refuses a thousand channels gets one
		// request a round, not a thousand spread over the wait. A request
		// refused as a whole is split in two halves retried a quarter of
		// the wait apart, so that a venue that refuses a request for one
		// bad channel (Binance) lets the others in within a few rounds;
		// while the session has maxRetryGroups groups, nothing is split
		// (a venue that refuses everything sees at most that many requests
		// a round), and as groups get in the bad one is split further.
		wait := backoff(attempts + 1)
		half := len(failed)
		if len(ok) == 0 && err != nil && len(failed) > 1 && retryGroups(ss, failed) < maxRetryGroups {
			half = (len(failed) + 1) / 2
		}
		for i, ch := range failed {
			f := ss.failed[ch]
			if f == nil {
				f = &failure{}
				ss.failed[ch] = f
			}
			f.attempts = attempts + 1
			f.err, f.at, f.next = cause, now, now.Add(wait)
			if i >= half {
				f.next = f.next.Add(wait/4 + time.Millisecond)
			}
		}
	}
	s.signal()
}

// Bounds of a venue's refusal kept in a channel's status for as long as the
// channel fails: a venue's message can be of any length, and a client may
// hold 65,536 failed channels.
const (
	maxKeptMessage = 512
	maxKeptData    = 512
)

// keptError is err as a channel's status keeps it: a venue's *RPCError
// with its message cut at maxKeptMessage bytes (on a rune boundary, the cut
// said) and data over maxKeptData bytes left out (Subscribe's error, built
// from the status, is bounded the same way); other errors as they are.
func keptError(err error) error {
	var rpc *RPCError
	if !errors.As(err, &rpc) || len(rpc.Message) <= maxKeptMessage && len(rpc.Data) <= maxKeptData {
		return err
	}
	c := *rpc
	if len(c.Message) > maxKeptMessage {
		cut := maxKeptMessage
		for cut > 0 && !utf8.RuneStart(c.Message[cut]) {
			cut--
		}
		c.Message = fmt.Sprintf("%s... (%d bytes)", c.Message[:cut], len(rpc.Message))
	}
	if len(c.Data) > maxKeptData {
		c.Data = nil
	}
	return &c // the venue's refusal alone: a wrapping text would hold the whole message again
}

// resubscribed takes the channels of a resubscribe out of an unsubscribe's
// outcome: whatever the venue answered, they are not applied any more, and
// the next round subscribes them (the venue's refusal of the unsubscribe
// is no failure to retry: the subscribe that follows is what counts). It
// returns the other channels and the confirmed ones among them; with s.mu
// held.
func (s *intent) resubscribed(ss *subSession, channels, ok []string) (rest, restOK []string) {
	for _, ch := range channels {
		if !ss.resub[ch] {
			rest = append(rest, ch)
			continue
		}
		delete(ss.resub, ch)
		delete(ss.applied, ch)
		delete(ss.failed, ch)
		if s.wanted[ch] != nil {
			if s.resubWait == nil {
				s.resubWait = map[string]bool{}
			}
			s.resubWait[ch] = true
		}
	}
	for _, ch := range ok {
		if slices.Contains(rest, ch) {
			restOK = append(restOK, ch)
		}
	}
	return rest, restOK
}

// waitFor waits until check, run with s.mu held, reports done, or ctx, the
// deadline or the client's stop ends the wait.
func (s *intent) waitFor(ctx context.Context, stopped <-chan struct{}, check func() bool) error {
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		done, changed := check(), s.changed
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			return ErrClosed
		}
	}
}

// retryWait is the wait before asking again for a channel refused attempts
// times on one connection: uniform in [cap/2, cap], cap as for reconnects
// (RetryDelay doubling up to MaxBackoff). Not full jitter: a refusal is
// the venue's answer, and asking again at once would only be refused again.
func (d *durable) retryWait(attempts int) time.Duration {
	c := backoffCap(attempts, d.cfg.RetryDelay, d.cfg.MaxBackoff)
	if c <= 1 {
		return c
	}
	return c/2 + time.Duration(rand.Int64N(int64(c/2)+1))
}

// converge brings ss to the wanted set: subscribe what it lacks,
// unsubscribe what is no longer wanted, in rounds until nothing is due
// (at most rounds). It returns when the next retry falls due (zero: none).
func (d *durable) converge(ctx context.Context, ss *subSession, rounds int) time.Time {
	var next time.Time
	for range rounds {
		add, remove, n := d.intent.work(ss, time.Now(), true)
		next = n
		if len(add)+len(remove) == 0 {
			return next
		}
		if len(add) > 0 {
			d.apply(ctx, ss, venue.OpSubscribe, add)
		}
		if len(remove) > 0 {
			d.apply(ctx, ss, venue.OpUnsubscribe, remove)
		}
	}
	_, _, next = d.intent.work(ss, time.Now(), false)
	return next
}

// apply sends op for channels on ss's connection with the dialect's
// requests, in order, and settles each request's outcome.
func (d *durable) apply(ctx context.Context, ss *subSession, op venue.SubscriptionOp, channels []string) {
	dialect := d.cfg.dialect()
	var reqs []venue.SubscriptionRequest
	// The Dialect is user code: a panic in it fails these channels with a
	// *PanicError (retried with backoff), never a crash.
	if err := guard("dialect", func() error { reqs = dialect.Requests(op, channels); return nil }); err != nil {
		d.intent.settle(ss, op, channels, nil, err, d.retryWait)
		return
	}
	covered := make(map[string]bool, len(channels))
	mine := make(map[string]bool, len(channels))
	for _, ch := range channels {
		mine[ch] = true
	}
	for _, r := range reqs {
		var confirmed []string
		err := guard("dialect", func() error {
			a, err := d.call(ctx, via{conn: ss.conn, pace: paceWait, gen: ss.gen}, func(id uint64) ([]byte, error) { return dialect.Encode(r, id) })
			if err != nil {
				return err
			}
			if confirmed, err = dialect.Confirmed(r, d.resultOf(a.resp, a.vr)); err != nil {
				return err
			}
			confirmed = d.onlyAsked(r, confirmed)
			return nil
		})
		asked := slices.DeleteFunc(slices.Clone(r.Channels), func(ch string) bool { return !mine[ch] || covered[ch] })
		for _, ch := range asked {
			covered[ch] = true
		}
		if err != nil || len(confirmed) < len(asked) {
			d.log.Debug("the venue did not apply every channel; retrying with backoff", zap.Stringer("op", op),
				zap.String("method", r.Method), zap.Uint64("generation", ss.gen), zap.Int("asked", len(asked)),
				zap.Int("confirmed", len(confirmed)), zap.Strings("channels", firstN(asked, 20)), zap.Error(err))
		}
		d.intent.settle(ss, op, asked, confirmed, err, d.retryWait)
	}
	// Channels the dialect put in no request cannot be applied.
	var left []string
	for _, ch := range channels {
		if !covered[ch] {
			left = append(left, ch)
		}
	}
	if len(left) > 0 {
		d.intent.settle(ss, op, left, nil, fmt.Errorf("%w: the dialect made no request for the channel", ErrInvalidRequest), d.retryWait)
	}
}

// firstN is at most n channels, for a log line.
func firstN(channels []string, n int) []string {
	if len(channels) > n {
		return channels[:n]
	}
	return channels
}

// restore converges a new connection's session before the client reports
// it connected. It returns the channels still failed on it and the first
// error: the connection is kept, the worker retries them with backoff.
func (d *durable) restore(ctx context.Context, ss *subSession) ([]string, error) {
	d.converge(ctx, ss, 4)
	s := d.intent
	s.mu.Lock()
	defer s.mu.Unlock()
	var failed []string
	for ch := range s.wanted {
		if ss.failed[ch] != nil && !ss.applied[ch] {
			failed = append(failed, ch)
		}
	}
	if len(failed) == 0 {
		return nil, nil
	}
	slices.Sort(failed)
	return failed, ss.failed[failed[0]].err
}

// missingFrom returns the channels applied on the primary session that ss
// lacks: a rotation keeps the old connection rather than lose them.
func (s *intent) missingFrom(ss *subSession) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if p := s.primary; p != nil && p != ss {
		for ch := range p.applied {
			if _, ok := s.wanted[ch]; ok && !ss.applied[ch] {
				out = append(out, ch)
			}
		}
	}
	slices.Sort(out)
	return out
}

// wake makes sure the live connection gets converged: it starts the
// worker goroutine unless it runs (then it goes round once more). The
// worker runs only while there is something to do, so an idle client holds
// no goroutine for it; a retry that falls due later wakes it with a timer.
func (d *durable) wake() {
	s := d.intent
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if s.running {
		s.again = true
		return
	}
	if len(s.wanted) == 0 && !s.anyApplied() {
		return // nothing to converge: a client without subscriptions starts no worker
	}
	s.running = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	d.wg.Add(1) // ordered before markStopped's Wait by s.mu (see stopIntent)
	go d.runIntent(ctx)
}

// anyApplied reports whether some session has channels applied or refused
// (an unsubscribe may be due); with s.mu held.
func (s *intent) anyApplied() bool {
	for _, ss := range s.sessions {
		if len(ss.applied) > 0 || len(ss.failed) > 0 || len(ss.inflight) > 0 {
			return true
		}
	}
	return false
}

// runIntent converges the live connection until nothing is due, then
// arms the retry timer for the next refused channel and ends.
func (d *durable) runIntent(ctx context.Context) {
	defer d.wg.Done()
	s := d.intent
	for {
		s.mu.Lock()
		s.again = false
		ss := s.primary
		if ss != nil && ss.setup {
			ss = nil // its setup goroutine converges it; promote wakes again
		}
		if ss == nil || s.stopped {
			s.running = false
			s.cancel()
			s.cancel = nil // an idle client keeps no context
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		// Each request has its deadline (RequestTimeout); a disconnect
		// fails them at once, and the client's stop cancels ctx.
		next := d.converge(ctx, ss, 1<<30)
		s.mu.Lock()
		if s.again && !s.stopped {
			s.mu.Unlock()
			continue
		}
		s.running = false
		s.cancel()
		s.cancel = nil
		if s.retry != nil {
			s.retry.Stop()
			s.retry = nil
		}
		if !next.IsZero() && !s.stopped {
			s.retry = time.AfterFunc(time.Until(next), d.wake)
		}
		s.mu.Unlock()
		return
	}
}

// stopIntent ends the convergence for good: no worker starts after it, so
// that the client's WaitGroup is not added to while it is waited for.
func (d *durable) stopIntent() {
	s := d.intent
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.cancel != nil {
		s.cancel() // the worker's requests in flight end now
	}
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
	s.signal()
}

// subscriptionOutcome is the result of a Subscribe or Unsubscribe once
// every channel has an outcome on the live connection.
func (d *durable) subscriptionOutcome(op venue.SubscriptionOp, applied, notApplied []string, cause error) error {
	switch {
	case len(notApplied) == 0:
		return nil
	case len(applied) == 0:
		return d.scrub(fmt.Errorf("zenws: %s %s: not applied: %w", op, channelList(notApplied), cause))
	}
	return &PartialError{Applied: applied, NotApplied: notApplied, Err: d.scrub(cause), secrets: d.secrets}
}

// channelList names at most 10 channels, for an error text: a Subscribe of
// 65,536 channels must not make a megabyte of error.
func channelList(chs []string) string {
	if len(chs) <= 10 {
		return fmt.Sprint(chs)
	}
	return fmt.Sprintf("%v and %d more", firstN(chs, 10), len(chs)-10)
}

// intentChanged is the worker's request to the actor to publish a fresh
// snapshot: a channel's status changed.
type intentChanged struct{}

// notifyActor asks the actor to publish: at most one request is queued at
// a time.
func (d *durable) notifyActor() {
	if d.publishQueued.CompareAndSwap(false, true) && !d.isStopped() {
		d.sys.Root.Send(d.pid, &intentChanged{})
	}
}
