// Package budget shares a venue's per-IP connection limit between the
// nodes of a Proto.Actor cluster that dial from one egress IP (Binance: 300
// connection attempts per 5 minutes per IP). Each node's dial limiter
// (actors.Config.DialLimiter) knows only its own clients; a Service's
// Limiter draws every attempt from one window held for the whole cluster.
//
// Where the window lives: every node runs a Service (an actor named
// ActorName); for each key (a venue and an egress IP, say
// "binance@203.0.113.7") the holder is the member of the topology with the
// lowest id, so every node asks the same one. The holder keeps the slots
// it granted and answers each request with when the caller may dial: at
// most Burst attempts in any Window (plus Margin between two slots a
// Window apart, for the way to the venue).
//
// When the holder cannot be asked (the cluster is unreachable: no answer
// within AskTimeout, or no member hosts the service), the attempt is drawn
// from a local window instead: Burst/Share attempts per Window, Share
// being the number of nodes expected to share the IP, counting the slots
// the holder granted this node in the last Window: in any Window a node
// makes at most the larger of its share and what it was granted there, so
// nodes that all degrade at once stay within the rule, or near it while
// slots granted unevenly age out. The Limiter says how often it degraded
// (Service.Stats). The attempts a node made on its own are told to the
// holder with its next request, and counted in the holder's window before
// it grants more.
//
// One node cut off while the others still reach the holder: every node's
// Service tells the holder it is there (HelloInterval), and the holder
// keeps one share (Burst/Share) for each node of the Share it has not
// heard from lately, since such a node may be drawing on its local share.
// So set Share to the number of nodes that dial from the IP: with fewer
// running, the others get less than the rule, never more. The slots the
// holder granted in the Window before it noticed a node's silence still
// count: the nodes may then exceed the rule by up to one share per node
// cut off, once; Rule.Strict closes that gap, at the price of a node cut
// off dialling nothing for a Window. The holder keeps the strictest rule
// any node sent for a key (the smallest Burst, the longest Window and
// Margin, the largest Share).
//
// A holder that goes away takes its slots with it: the next holder starts
// with an empty window, so within one Window after a change of holder the
// nodes together may make up to one Burst more than the rule. Set Share
// and the local window's rule below the venue's where that matters.
//
// How it hooks into the client: the Limiter is a ratelimit.Limiter whose
// Classifier asks the holder and waits for the slot (the Classifier is
// the one place a Limiter runs user code before a dial, and package
// actors is not changed for this); the frame is then free. A wait is as
// long as the holder's queue: with more clients waiting than Burst, their
// slots reach several Windows ahead. Once the Service stops, waits end
// and every attempt is refused (ratelimit.ErrRateLimited: a client takes
// that as a dial limiter that can never admit it, and stops), so stop it
// after the clients it paces, or to end them. A client closed while it
// waits for its slot stops waiting (the Limiter's Classifier is a
// ratelimit.ContextClassifier given the dial's ctx); the slot it was
// granted stays counted, the safe way.
package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// ActorName is the name of the budget actor on every node.
const ActorName = "zenws-dial-budget"

// maxTries bounds the slots one attempt asks for when it wakes up late.
const maxTries = 3

// maxAhead bounds, in windows, how far ahead a slot a node reserved alone
// and tells the holder of may be; one further ahead is not counted.
const maxAhead = 64

// Defaults.
const (
	DefaultAskTimeout = time.Second
	DefaultMargin     = 100 * time.Millisecond
)

// Rule is one shared budget: at most Burst connection attempts in any
// Window, for the nodes that dial from one IP. Share is how many nodes
// expect to share it (the local window when the cluster is unreachable is
// Burst/Share; default 1).
type Rule struct {
	Key    string // the venue and egress IP, e.g. "binance@203.0.113.7"
	Window time.Duration
	Burst  int
	Share  int
	// AskTimeout bounds a request to the holder (default 1 s); Margin is
	// kept between two slots a Window apart (default 100 ms), and is how
	// late a slot may be dialled: a grant whose round trip to the holder
	// took longer is given up and asked again (then drawn from the local
	// share), so set Margin above the round trip to the holder (nodes in
	// other zones: a few hundred ms).
	AskTimeout time.Duration
	Margin     time.Duration
	// Strict: a node cut off from the holder draws nothing from its local
	// share until a Window (plus Margin and the holder's second to notice)
	// has passed since it last reached the holder, so that the rule holds
	// even as a partition begins (the slots the holder granted others just
	// before then are out of every window by then). The price: a node cut
	// off makes no connection attempt for about a Window. Default off: the
	// local share opens at once, and the nodes may exceed the rule by up to
	// one share per node cut off, in the Window in which it is cut off.
	Strict bool
}

// Binance is Binance's rule: 300 connection attempts per 5 minutes per IP.
func Binance(ip string, share int) Rule {
	return Rule{Key: "binance@" + ip, Window: 5 * time.Minute, Burst: 300, Share: share}
}

// HelloInterval is how often each node's Service tells the holder it is
// there, for each key it has limiters for; the holder takes a node it has
// not heard from for four of them (liveFor) as one that may be drawing on
// its local share.
const HelloInterval = 250 * time.Millisecond

const liveFor = 4 * HelloInterval

// Bounds of a Rule, checked by Limiter and again by the holder (another
// node may run other code).
const (
	MaxKey    = 256            // bytes of a Rule's Key
	MaxWindow = 24 * time.Hour // a Rule's Window, Margin and AskTimeout
)

// Bounds of what a holder keeps for other nodes' requests.
const (
	maxKeys  = 4096 // windows (keys) a holder keeps; past it, idle ones are forgotten, or a request for another is not answered
	maxHeard = 1024 // nodes a key's window remembers hearing from
)

// Service is this node's budget actor and the limiters drawn from it.
type Service struct {
	sys     *actor.ActorSystem
	members func() []*protocluster.Member
	pid     *actor.PID
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup // the hello goroutine

	out <-chan struct{} // WithOut: closed once this member was taken out of the cluster

	mu    sync.Mutex
	stats map[string]*counters
	keys  []string // the keys of the limiters made here, for the hellos
}

// isOut: this member was taken out of the cluster (WithOut).
func (s *Service) isOut() bool {
	if s.out == nil {
		return false
	}
	select {
	case <-s.out:
		return true
	default:
		return false
	}
}

type counters struct{ granted, degraded atomic.Uint64 }

// Stats counts what a key's limiters did on this node.
type Stats struct {
	Granted  uint64 // attempts the holder granted
	Degraded uint64 // attempts drawn from the local window (the holder could not be asked)
}

// Option configures a Service.
type Option func(*Service)

// WithOut gives the Service a channel closed once this member was taken
// out of the cluster (cluster.Agent.Expelled): from then on it neither
// holds the windows nor asks a holder, and draws every attempt from its
// local share, as a node cut off does. A member taken out still sees
// itself in its own topology, and as the lowest member it would hold a
// window of its own beside the one the others moved to: two windows, the
// rule twice over.
func WithOut(out <-chan struct{}) Option { return func(s *Service) { s.out = out } }

// Start spawns the budget actor on sys (once per actor system) and returns
// the Service. members lists the cluster's members (membership.Member's
// Members; this node's remote must be started for the others to reach it).
func Start(sys *actor.ActorSystem, members func() []*protocluster.Member, opts ...Option) (*Service, error) {
	if sys == nil || members == nil {
		return nil, errors.New("zenws/balancer/cluster/budget: Start: nil actor system or members")
	}
	s := &Service{sys: sys, members: members, stop: make(chan struct{}), stats: map[string]*counters{}}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &holder{windows: map[string]*window{}} }), ActorName)
	if err != nil {
		return nil, fmt.Errorf("zenws/balancer/cluster/budget: Start: %w", err)
	}
	s.pid = pid
	s.wg.Add(1)
	go s.hello()
	return s, nil
}

// hello tells the holder, every HelloInterval, that this node is there
// for each of its keys, until Stop.
func (s *Service) hello() {
	defer s.wg.Done()
	t := time.NewTicker(HelloInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		keys := slices.Clone(s.keys)
		s.mu.Unlock()
		if len(keys) == 0 || s.isOut() {
			continue
		}
		if pid, err := s.holderOf(); err == nil {
			s.sys.Root.Send(pid, &wire.BudgetHello{MemberAddress: s.sys.Address(), Keys: keys})
		}
	}
}

// Stop stops the budget actor and ends every wait for a slot.
func (s *Service) Stop() {
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		_ = s.sys.Root.StopFuture(s.pid).Wait()
	})
}

// Stats returns the counters of key on this node.
func (s *Service) Stats(key string) Stats {
	c := s.counters(key)
	return Stats{Granted: c.granted.Load(), Degraded: c.degraded.Load()}
}

func (s *Service) counters(key string) *counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.stats[key]
	if c == nil {
		c = &counters{}
		s.stats[key] = c
	}
	return c
}

// Limiter returns a dial limiter for r (give it to actors.Config.DialLimiter
// of every client that dials from r's IP on this node).
func (s *Service) Limiter(r Rule) (*ratelimit.Limiter, error) {
	if r.Key == "" || r.Window <= 0 || r.Burst < 1 {
		return nil, fmt.Errorf("zenws/balancer/cluster/budget: rule %q: need a key, a positive window and a burst of at least 1", r.Key)
	}
	if len(r.Key) > MaxKey || r.Window > MaxWindow || r.Margin > MaxWindow || r.AskTimeout > MaxWindow {
		return nil, fmt.Errorf("zenws/balancer/cluster/budget: rule %q: a key of at most %d bytes, and Window, Margin and AskTimeout of at most %v", r.Key[:min(len(r.Key), 64)], MaxKey, MaxWindow)
	}
	if r.Share < 1 {
		r.Share = 1
	}
	if r.Share > r.Burst {
		// Each node's local window would be at least one attempt: the
		// nodes cut off together would make Share attempts, over Burst.
		return nil, fmt.Errorf("zenws/balancer/cluster/budget: rule %q: Share %d is more than Burst %d: the nodes' local windows (Burst/Share each, at least 1) would exceed the rule together", r.Key, r.Share, r.Burst)
	}
	if r.AskTimeout <= 0 {
		r.AskTimeout = DefaultAskTimeout
	}
	if r.Margin <= 0 {
		r.Margin = DefaultMargin
	}
	share := &localShare{burst: max(1, r.Burst/r.Share), keep: r.Window + r.Margin, contact: time.Now()}
	c := s.counters(r.Key)
	s.mu.Lock()
	if !slices.Contains(s.keys, r.Key) {
		s.keys = append(s.keys, r.Key)
	}
	s.mu.Unlock()
	classify := func(ctx context.Context, f ratelimit.Frame) (int, int) {
		if f.Control {
			return 0, 0
		}
		// ctx ended (the client closes): the Limiter refuses the frame,
		// whatever this returns.
		// A slot this process wakes up to more than Margin late (it was
		// paused: a stall, SIGSTOP) is given up: dialling then would
		// bunch with later slots. It asks again, a few times.
		for try := 0; try < maxTries && !s.isOut(); try++ {
			sent := time.Now()
			delay, err := s.take(r, share)
			if err != nil {
				break
			}
			// The holder's slot is delay after its now, somewhere between
			// sent and the answer's arrival on this clock: at the earliest
			// sent+delay. Dialling later than Margin after it would bunch
			// with the holder's later slots (an answer slow on its way, a
			// pause here): such a slot is given up, and asked again. So a
			// round trip to the holder longer than Margin gives up every
			// grant: set Margin above the link's round trip.
			at := sent.Add(delay)
			share.record(at) // and the contact
			if !s.wait(ctx, time.Until(at)) {
				return 0, share.burst + 1 // stopped: more than the bucket holds, refused
			}
			if time.Since(at) <= r.Margin {
				c.granted.Add(1)
				return 0, 0 // the holder counted it
			}
		}
		// The holder cannot be asked: the local share decides, counting
		// what the holder granted this node in the last window.
		c.degraded.Add(1)
		if r.Strict {
			// Nothing until the slots the holder may have granted others
			// before it noticed this node's silence are out of every
			// window this node's next slot would be in.
			if !s.wait(ctx, time.Until(share.lastContact().Add(r.Window+r.Margin+liveFor))) {
				return 0, share.burst + 1
			}
		}
		for try := 0; try < maxTries; try++ {
			at := share.reserve(r)
			if !s.wait(ctx, time.Until(at)) {
				return 0, share.burst + 1
			}
			if time.Since(at) <= r.Margin {
				return 0, 0
			}
		}
		return 0, share.burst + 1 // missed every slot: refused
	}
	return ratelimit.NewContext("shared dial budget "+r.Key, classify,
		ratelimit.Bucket{Name: "connections (refused once the Service stops)", Window: r.Window, Burst: share.burst})
}

// localShare is a node's own window of one rule: the slots the holder
// granted it and those it took alone, at most burst (Burst/Share) in any
// Window when it is alone.
type localShare struct {
	mu      sync.Mutex
	contact time.Time // when the holder last granted a slot (or the Limiter was made)
	burst   int
	keep    time.Duration // Window + Margin: an older slot no longer counts
	w       window
	untold  []time.Time // slots taken alone, not yet told to the holder (none older than keep)
}

// record notes a slot the holder granted.
func (l *localShare) record(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.insert(at)
	l.contact = time.Now()
}

func (l *localShare) lastContact() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.contact
}

// reserve takes the node's next slot of its own.
func (l *localShare) reserve(r Rule) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.w.reserve(time.Now(), r.Window, l.burst, r.Margin)
	l.untold = append(l.untold, at)
	return at
}

// tell returns the slots taken alone since the last call, as how long ago
// each was at now (the holder's clock need not agree with this one's).
func (l *localShare) tell(now time.Time) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, 0, len(l.untold))
	for _, at := range l.untold {
		if ago := now.Sub(at); ago <= l.keep { // negative: a slot still to come
			out = append(out, int64(ago))
		}
	}
	l.untold = l.untold[:0]
	return out
}

// untell puts back slots that could not be told.
func (l *localShare) untell(now time.Time, ago []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range ago {
		l.untold = append(l.untold, now.Add(-time.Duration(a)))
	}
	// A long cut-off: what the holder would no longer count is dropped, so
	// the list stays as long as one window's slots.
	l.untold = slices.DeleteFunc(l.untold, func(at time.Time) bool { return now.Sub(at) > l.keep })
}

// holderOf is the member that holds the windows: the lowest id.
func (s *Service) holderOf() (*actor.PID, error) {
	ms := s.members()
	if len(ms) == 0 {
		return nil, errors.New("no members")
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].GetId() < ms[j].GetId() })
	if addr := ms[0].Address(); addr != s.sys.Address() && ms[0].GetId() != s.sys.ID {
		return actor.NewPID(addr, ActorName), nil
	}
	return s.pid, nil
}

// Holder is the address of the member that holds the windows now, as this
// node sees the topology ("" when it knows no member, or once this member
// was taken out of the cluster: WithOut).
func (s *Service) Holder() string {
	if s.isOut() {
		return ""
	}
	pid, err := s.holderOf()
	if err != nil {
		return ""
	}
	return pid.Address
}

func (s *Service) take(r Rule, share *localShare) (time.Duration, error) {
	pid, err := s.holderOf()
	if err != nil {
		return 0, err
	}
	now := time.Now()
	told := share.tell(now)
	res, err := s.sys.Root.RequestFuture(pid, &wire.BudgetTake{Key: r.Key, WindowNs: int64(r.Window),
		Burst: uint32(r.Burst), MarginNs: int64(r.Margin), TakenAgoNs: told, Share: uint32(r.Share),
		MemberAddress: s.sys.Address()}, r.AskTimeout).Result()
	if err != nil {
		share.untell(now, told) // maybe told all the same: counted twice at worst, the safe way
		return 0, err
	}
	g, ok := res.(*wire.BudgetGrant)
	if !ok {
		return 0, fmt.Errorf("the holder answered %T", res)
	}
	return time.Duration(g.GetDelayNs()), nil
}

// wait waits d, or until the Service stops or ctx ends (false).
func (s *Service) wait(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	case <-ctx.Done():
		return false
	}
}

// holder is the budget actor: on the holding member, the windows.
type holder struct{ windows map[string]*window }

// window is one key's granted slots, ascending (future ones included),
// and its rule: the strictest its callers asked with lately (the longest
// window and margin, the smallest burst), so that one node with a looser
// rule for the key (a rolling deploy, a typo) cannot take what the others
// were kept from.
type window struct {
	slots  []time.Time
	span   time.Duration
	burst  int
	margin time.Duration
	share  int                  // the most nodes any caller said share the key
	heard  map[string]time.Time // node address -> when last heard from (a hello or a request)
	rules  map[rule]time.Time   // each rule callers sent -> when last sent
}

// ruleMemory bounds how long a rule counts after it was last sent (or its
// own window and margin, where shorter): a rule sent once by mistake rules
// the key for at most this long.
const ruleMemory = 10 * time.Second

// rule is a rule a caller sent for a key.
type rule struct {
	addr         string // the caller's address
	span, margin time.Duration
	burst, share int
}

// tighten records the caller's rule and makes the window's rule the
// strictest of those its callers sent within their own window or
// ruleMemory, whichever is shorter (a rule no caller has sent for that long
// is forgotten: one request with a rule stricter by mistake does not rule
// the key for good).
func (w *window) tighten(r rule, now time.Time) {
	if w.rules == nil {
		w.rules = map[rule]time.Time{}
	}
	if _, ok := w.rules[r]; ok || len(w.rules) < maxHeard {
		w.rules[r] = now
	}
	w.span, w.margin, w.burst, w.share = r.span, r.margin, r.burst, r.share
	for o, at := range w.rules {
		if now.Sub(at) > min(o.span+o.margin, ruleMemory) {
			delete(w.rules, o)
			continue
		}
		if o.burst >= 1 && o.burst < w.burst {
			w.burst = o.burst
		}
		w.span, w.margin, w.share = max(w.span, o.span), max(w.margin, o.margin), max(w.share, o.share)
	}
}

// hear notes that the node at addr can reach the holder.
func (w *window) hear(addr string, now time.Time) {
	if addr == "" {
		return
	}
	if w.heard == nil {
		w.heard = map[string]time.Time{}
	}
	if _, ok := w.heard[addr]; !ok && len(w.heard) >= maxHeard {
		for a, t := range w.heard {
			if now.Sub(t) > liveFor {
				delete(w.heard, a)
			}
		}
		if len(w.heard) >= maxHeard {
			return
		}
	}
	w.heard[addr] = now
}

// limit is the burst the holder grants from now: Burst, less one share
// (Burst/Share) for each node of the Share it has not heard from within
// liveFor. Such a node may be cut off and drawing on its local share; if
// it is only idle or gone, the others get less than the rule, never more.
func (w *window) limit(now time.Time) int {
	if w.share <= 1 {
		return w.burst
	}
	live := 0
	for _, t := range w.heard {
		if now.Sub(t) <= liveFor {
			live++
		}
	}
	per := max(1, w.burst/w.share)
	return max(per, w.burst-max(0, w.share-live)*per)
}

// windowOf is key's window, made on first use; nil for a key over MaxKey,
// or past maxKeys windows none of which is idle.
func (h *holder) windowOf(key string) *window {
	if key == "" || len(key) > MaxKey {
		return nil
	}
	w := h.windows[key]
	if w == nil {
		if len(h.windows) >= maxKeys && !h.forgetIdle(time.Now()) {
			return nil
		}
		w = &window{}
		h.windows[key] = w
	}
	return w
}

// forgetIdle drops the windows that count nothing any more (every slot
// older than the window) and that no node said hello for lately; it
// reports whether it dropped any.
func (h *holder) forgetIdle(now time.Time) bool {
	dropped := false
	for k, w := range h.windows {
		if w.idle(now) {
			delete(h.windows, k)
			dropped = true
		}
	}
	return dropped
}

// idle: nothing in w counts now, and no node was heard of for it lately.
func (w *window) idle(now time.Time) bool {
	if n := len(w.slots); n > 0 && !w.slots[n-1].Before(now.Add(-w.span-w.margin)) {
		return false
	}
	for _, t := range w.heard {
		if now.Sub(t) <= liveFor {
			return false
		}
	}
	return true
}

func (h *holder) Receive(ctx actor.Context) {
	if hello, ok := ctx.Message().(*wire.BudgetHello); ok {
		now := time.Now()
		for _, k := range hello.GetKeys()[:min(len(hello.GetKeys()), 64)] {
			if w := h.windowOf(k); w != nil {
				w.hear(hello.GetMemberAddress(), now)
			}
		}
		return
	}
	m, ok := ctx.Message().(*wire.BudgetTake)
	if !ok || ctx.Sender() == nil {
		return
	}
	w := h.windowOf(m.GetKey())
	if w == nil {
		return // no answer: the caller falls back to its own window
	}
	span, margin := time.Duration(m.GetWindowNs()), time.Duration(m.GetMarginNs())
	if span <= 0 || span > MaxWindow || margin < 0 || margin > MaxWindow {
		return // no rule a Limiter would send: no answer, the caller falls back to its own window
	}
	w.tighten(rule{addr: m.GetMemberAddress(), span: span, margin: margin,
		burst: int(min(m.GetBurst(), math.MaxInt32)), share: int(min(m.GetShare(), math.MaxInt32))}, time.Now())
	w.hear(m.GetMemberAddress(), time.Now())
	if w.burst < 1 || w.span <= 0 {
		return // no rule a Limiter would send: no answer, the caller falls back to its own window
	}
	now := time.Now()
	told := m.GetTakenAgoNs() // what the caller took alone meanwhile
	if len(told) > w.burst {
		told = told[len(told)-w.burst:] // more than a window holds says nothing more
	}
	for _, ago := range told {
		// A slot the caller took within the window, or reserved ahead
		// (a queue of its own may reach several windows ahead).
		if span := int64(w.span + w.margin); ago <= span && ago >= -maxAhead*span {
			w.insert(now.Add(-time.Duration(ago)))
		}
	}
	slot := w.reserve(now, w.span, w.limit(now), w.margin)
	ctx.Respond(&wire.BudgetGrant{DelayNs: int64(slot.Sub(now))})
}

// insert adds a slot taken elsewhere, in order.
func (w *window) insert(at time.Time) {
	i := sort.Search(len(w.slots), func(i int) bool { return w.slots[i].After(at) })
	w.slots = append(w.slots, time.Time{})
	copy(w.slots[i+1:], w.slots[i:])
	w.slots[i] = at
}

// reserve takes the first slot at or after now that keeps at most burst
// slots in any window (and margin between two slots a window apart).
func (w *window) reserve(now time.Time, window time.Duration, burst int, margin time.Duration) time.Time {
	keep := 0
	for keep < len(w.slots) && w.slots[keep].Before(now.Add(-window-margin)) {
		keep++
	}
	w.slots = w.slots[keep:]
	slot := now
	if n := len(w.slots); n > 0 && w.slots[n-1].After(slot) {
		slot = w.slots[n-1]
	}
	if n := len(w.slots); burst >= 1 && n >= burst {
		if next := w.slots[n-burst].Add(window + margin); next.After(slot) {
			slot = next
		}
	}
	w.slots = append(w.slots, slot)
	return slot
}
