package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zenws/zenws/actors"
)

// faultKind is one kind of fault the suite injects on one venue.
type faultKind struct {
	name string
	// disruptive faults end the connection: each must cost the client
	// exactly one reconnect. The others must cost none, except that latency
	// and bandwidth limits may trip a heartbeat or write deadline (counted
	// apart as incidental).
	disruptive bool
	mayTrip    bool // non-disruptive, but allowed incidental reconnects
	inject     func(r *rig, ctx context.Context, v int, h0 actors.Health) error
}

// faultKinds in the order they are injected: disruptive and
// non-disruptive alternate, and a run of 7 faults covers every kind.
var faultKinds = []faultKind{
	{name: "reset", disruptive: true, inject: (*rig).reset},
	{name: "latency", mayTrip: true, inject: (*rig).latency},
	{name: "half-open", disruptive: true, inject: (*rig).halfOpen},
	{name: "bandwidth", mayTrip: true, inject: (*rig).bandwidth},
	{name: "restart", disruptive: true, inject: (*rig).restart},
	{name: "slicer", inject: (*rig).slicer},
	{name: "refuse", disruptive: true, inject: (*rig).refuse},
}

// faultRecord is one injected fault and what it cost.
type faultRecord struct {
	kind       faultKind
	venue      int
	start      time.Time
	healed     time.Time // fault removed
	recovered  time.Time // client connected again with every channel flowing
	reconnects uint64    // the client's reconnects over the window
	restarts   uint64    // its supervisor restarts over the window
	causes     []string  // why each connection in the window was lost
	subsOK     bool      // the venue's live connection has exactly the client's channels
	subsDetail string
	err        error
}

// reset: Toxiproxy's reset_peer closes the proxied connection as soon as
// the venue sends a byte (for connections opened while the toxic is on,
// with SO_LINGER 0: a TCP RST).
func (r *rig) reset(_ context.Context, v int, h0 actors.Health) error {
	ven := r.venues[v]
	if err := ven.addToxic(toxic{"reset", "reset_peer", "downstream", map[string]any{"timeout": 0}}); err != nil {
		return err
	}
	lost := r.awaitDrop(v, h0, 5*time.Second)
	return errors.Join(lost, ven.removeToxic("reset"))
}

// halfOpen: a timeout toxic on both directions; bytes stop flowing both
// ways while both TCP connections stay open. Only the client's heartbeat
// can tell; the toxics go once it has.
func (r *rig) halfOpen(_ context.Context, v int, h0 actors.Health) error {
	ven := r.venues[v]
	for _, dir := range []string{"upstream", "downstream"} {
		if err := ven.addToxic(toxic{"blackhole_" + dir, "timeout", dir, map[string]any{"timeout": 0}}); err != nil {
			return err
		}
	}
	lost := r.awaitDrop(v, h0, time.Duration(r.cfg.heartbeatMisses+2)*r.cfg.heartbeat+3*time.Second)
	return errors.Join(lost,
		ven.removeToxic("blackhole_upstream"),
		ven.removeToxic("blackhole_downstream"))
}

// restart: the venue's process dies (port closed, connections cut, state
// lost) and a fresh one comes back on the same port after the downtime.
func (r *rig) restart(ctx context.Context, v int, h0 actors.Health) error {
	ven := r.venues[v]
	ven.kill()
	lost := r.awaitDrop(v, h0, 5*time.Second)
	hold(ctx, r.cfg.downtime)
	return errors.Join(lost, ven.revive())
}

// refuse: the venue drops the connection and answers every handshake with
// 503 for a while.
func (r *rig) refuse(ctx context.Context, v int, h0 actors.Health) error {
	srv := r.venues[v].server()
	refused := srv.RefusedHandshakes()
	srv.RefuseHandshakes(503)
	srv.DropAll()
	lost := r.awaitDrop(v, h0, 5*time.Second)
	hold(ctx, r.cfg.refuseFor)
	var tried error
	if !eventually(5*time.Second, func() bool { return srv.RefusedHandshakes() > refused }) {
		tried = fmt.Errorf("venue%d: no handshake was refused", v+1)
	}
	srv.RefuseHandshakes(0)
	return errors.Join(lost, tried)
}

// latency: 100 ms +/- 50 ms each way. The client's last heartbeat round
// trip before the toxics go is kept, to show they were in the path.
func (r *rig) latency(ctx context.Context, v int, _ actors.Health) error {
	attrs := map[string]any{"latency": 100, "jitter": 50}
	return r.toxicsFor(ctx, v, "latency", attrs, attrs, func() {
		rtt := r.clients[v].Health().RTTLast
		r.mu.Lock()
		r.latencyRTT = append(r.latencyRTT, rtt)
		r.mu.Unlock()
	})
}

// bandwidth: 2 KB/s from the venue (below the ~5 KB/s its ticker and
// replies need, so frames and pongs queue in the proxy and the heartbeat
// may give up on the link) and 8 KB/s to it.
func (r *rig) bandwidth(ctx context.Context, v int, _ actors.Health) error {
	return r.toxicsFor(ctx, v, "bandwidth", map[string]any{"rate": 2}, map[string]any{"rate": 8}, nil)
}

// slicer: every frame is cut into TCP segments of 4-12 bytes each way
// (each slice is its own write on a TCP_NODELAY socket), so WebSocket
// headers and JSON are split everywhere. No delay between slices: the
// toxic waits with a timer per slice, which on a loaded machine fires
// late enough to turn the slicer into a bandwidth limit.
func (r *rig) slicer(ctx context.Context, v int, _ actors.Health) error {
	attrs := map[string]any{"average_size": 8, "size_variation": 4, "delay": 0}
	return r.toxicsFor(ctx, v, "slicer", attrs, attrs, nil)
}

// toxicsFor holds a toxic of kind on both directions for cfg.hold, then
// calls atEnd (if not nil) and removes them.
func (r *rig) toxicsFor(ctx context.Context, v int, kind string, down, up map[string]any, atEnd func()) error {
	ven := r.venues[v]
	if err := ven.addToxic(toxic{kind + "_down", kind, "downstream", down}); err != nil {
		return err
	}
	if err := ven.addToxic(toxic{kind + "_up", kind, "upstream", up}); err != nil {
		return errors.Join(err, ven.removeToxic(kind+"_down"))
	}
	hold(ctx, r.cfg.hold)
	if atEnd != nil {
		atEnd()
	}
	return errors.Join(ven.removeToxic(kind+"_up"), ven.removeToxic(kind+"_down"))
}

// awaitDrop waits until client v has noticed that its connection is gone.
func (r *rig) awaitDrop(v int, h0 actors.Health, within time.Duration) error {
	if !eventually(within, func() bool { return r.clients[v].Health().Reconnects > h0.Reconnects }) {
		return fmt.Errorf("venue%d: the client did not notice the fault within %v", v+1, within)
	}
	return nil
}

// runFault injects kind on venue v, heals it, waits until the client has
// recovered, and checks the venue's live connection.
func (r *rig) runFault(ctx context.Context, kind faultKind, v int) faultRecord {
	c, f := r.clients[v], r.feeds[v]
	h0 := c.Health()
	rec := faultRecord{kind: kind, venue: v, start: time.Now()}
	rec.err = kind.inject(r, ctx, v, h0)
	rec.healed = time.Now()
	flowing := f.snapshot()

	if !eventually(r.cfg.recoverWithin, func() bool {
		h := c.Health()
		if h.State != actors.StateConnected || (kind.disruptive && h.Generation <= h0.Generation) {
			return false
		}
		return f.grewBy(flowing, 2) && r.venues[v].server().ConnCount() == 1
	}) {
		h := c.Health()
		rec.err = errors.Join(rec.err, fmt.Errorf("venue%d: not recovered %v after %s healed (state %v, gen %d->%d, server conns %d, last error %v)",
			v+1, r.cfg.recoverWithin, kind.name, h.State, h0.Generation, h.Generation, r.venues[v].server().ConnCount(), h.LastError))
	}
	rec.recovered = time.Now()
	rec.subsOK, rec.subsDetail = r.checkSubscriptions(v)
	h := c.Health()
	rec.reconnects = h.Reconnects - h0.Reconnects
	rec.restarts = h.Restarts - h0.Restarts
	rec.causes = f.dropsBetween(rec.start, rec.recovered)
	return rec
}

// checkSubscriptions compares the channels of the venue's only live
// connection with the client's confirmed set and with what it subscribed.
func (r *rig) checkSubscriptions(v int) (bool, string) {
	conns := r.venues[v].server().Conns()
	if len(conns) != 1 {
		return false, fmt.Sprintf("venue%d has %d live connections", v+1, len(conns))
	}
	server := conns[0].Channels()
	client := slices.Sorted(slices.Values(r.clients[v].Subscriptions()))
	if !slices.Equal(server, client) || !slices.Equal(client, r.feeds[v].channels) {
		return false, fmt.Sprintf("venue%d: server %v, client %v, subscribed %v", v+1, server, client, r.feeds[v].channels)
	}
	return true, ""
}

// injectFaults runs `workers` fault injectors until `until`: each takes
// the next kind and the next venue no other injector is working on.
func (r *rig) injectFaults(ctx context.Context, workers int, until time.Time) []faultRecord {
	var (
		mu      sync.Mutex
		records []faultRecord
		busy    = make([]bool, len(r.venues))
		k, next int
		wg      sync.WaitGroup
	)
	pick := func() (faultKind, int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if time.Now().After(until) || ctx.Err() != nil {
			return faultKind{}, 0, false
		}
		kind := r.cfg.kinds[k%len(r.cfg.kinds)]
		k++
		for busy[next%len(busy)] {
			next++
		}
		v := next % len(busy)
		busy[v] = true
		next++
		return kind, v, true
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				kind, v, ok := pick()
				if !ok {
					return
				}
				rec := r.runFault(ctx, kind, v)
				mu.Lock()
				records = append(records, rec)
				busy[v] = false
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(records, func(a, b faultRecord) int { return a.start.Compare(b.start) })
	return records
}

// hold waits for d (a fault's duration, not a synchronisation) or until
// ctx ends.
func hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// eventually polls cond every 10 ms until it holds (true) or d has passed
// (false).
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
