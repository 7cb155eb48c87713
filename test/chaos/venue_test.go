package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/zenws/zenws/transport/wstest"
)

// Credentials of the simulated sub-account: every venue checks them, so
// orders need the client's connect hook to authenticate every connection.
const (
	clientID     = "chaos"
	clientSecret = "chaos-secret"
)

// network is the fault injector: a Toxiproxy server embedded in this
// process (no daemon, no HTTP API), holding one proxy per venue.
type network struct {
	api *toxiproxy.ApiServer

	mu             sync.Mutex
	slowestRemoval time.Duration
}

func (n *network) noteRemoval(d time.Duration) {
	n.mu.Lock()
	n.slowestRemoval = max(n.slowestRemoval, d)
	n.mu.Unlock()
}

// slowest is the longest a toxic removal took.
func (n *network) slowest() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.slowestRemoval
}

func newNetwork() *network {
	return &network{api: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())}
}

// close stops every proxy: listeners and proxied connections are closed and
// their goroutines end.
func (n *network) close() error { return n.api.Collection.Clear() }

// venue is one simulated Deribit venue with a ticker, and the Toxiproxy
// proxy its client dials. The proxy's address is the venue's address for
// the whole run: a restarted venue comes back on the same port.
type venue struct {
	net   *network
	idx   int
	name  string
	addr  string // the proxy's listening address, fixed for the run
	proxy *toxiproxy.Proxy
	opts  []wstest.Option

	mu      sync.Mutex
	srv     *wstest.Server   // the live server process
	retired []*wstest.Server // servers that were "killed", kept for their order counts
}

func (n *network) newVenue(idx int, ticker time.Duration) (*venue, error) {
	v := &venue{
		net:  n,
		idx:  idx,
		name: fmt.Sprintf("venue%d", idx+1),
		opts: []wstest.Option{
			wstest.WithDeribit(),
			wstest.WithDeribitCredentials(clientID, clientSecret),
			wstest.WithDeribitTicker(ticker),
			wstest.WithCaptureLimit(1), // a long run must not store every frame
		},
	}
	v.srv = wstest.NewServer(v.opts...)
	v.proxy = toxiproxy.NewProxy(n.api, v.name, "127.0.0.1:0", v.srv.Addr())
	if err := n.api.Collection.Add(v.proxy, true); err != nil {
		v.srv.Close()
		return nil, fmt.Errorf("%s: start proxy: %w", v.name, err)
	}
	// Proxy.Listen is rewritten by the proxy's own goroutine on every start:
	// keep a copy to read without racing it.
	v.proxy.Lock()
	v.addr = v.proxy.Listen
	v.proxy.Unlock()
	return v, nil
}

// url is what the venue's client dials: the proxy.
func (v *venue) url() string { return "ws://" + v.addr + "/ws/api/v2" }

// server is the live server process.
func (v *venue) server() *wstest.Server {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.srv
}

// servers lists every server process the venue had, live one last.
func (v *venue) servers() []*wstest.Server {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append(append([]*wstest.Server(nil), v.retired...), v.srv)
}

// ordersByLabel counts the executions of label over every server process
// the venue had.
func (v *venue) ordersByLabel(label string) int {
	n := 0
	for _, s := range v.servers() {
		n += s.OrdersByLabel(label)
	}
	return n
}

// orders counts every execution over every server process the venue had.
func (v *venue) orders() int {
	n := 0
	for _, s := range v.servers() {
		n += s.Orders()
	}
	return n
}

// kill takes the venue down the way a crashed process goes: the proxy stops
// listening (a dial to the venue's port is refused) and closes every
// proxied connection without a close frame, and the server process ends
// with all its state (sessions, subscriptions, authentication).
func (v *venue) kill() {
	v.proxy.Stop()
	v.mu.Lock()
	old := v.srv
	v.mu.Unlock()
	old.Close()
}

// revive starts a fresh server process and makes the venue's port accept
// connections again, forwarding to it.
func (v *venue) revive() error {
	srv := wstest.NewServer(v.opts...)
	v.mu.Lock()
	v.retired = append(v.retired, v.srv)
	v.srv = srv
	v.mu.Unlock()
	// Update restarts the stopped proxy on its old address with the new
	// upstream.
	return v.proxy.Update(&toxiproxy.Proxy{Listen: v.addr, Upstream: srv.Addr(), Enabled: true})
}

// close ends every server process the venue had (the proxy is stopped by
// network.close).
func (v *venue) close() {
	for _, s := range v.servers() {
		s.Close()
	}
}

// toxic is one Toxiproxy toxic on one direction of a venue's proxy:
// "downstream" is venue to client, "upstream" client to venue.
type toxic struct {
	name, kind, stream string
	attrs              map[string]any
}

// addToxic attaches t to every current and future connection of the venue.
func (v *venue) addToxic(t toxic) error {
	b, err := json.Marshal(map[string]any{
		"name": t.name, "type": t.kind, "stream": t.stream, "toxicity": 1.0, "attributes": t.attrs,
	})
	if err != nil {
		return err
	}
	if _, err := v.proxy.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("%s: add toxic %s: %w", v.name, t.name, err)
	}
	return nil
}

// removeWithin bounds the removal of a toxic. Toxiproxy waits for every
// link's pipeline to hand over, and for a link whose client has gone (a
// heartbeat gave up on a starved link) it flushes what the toxic holds
// with up to 5 s per chunk (toxics/toxic.go, WriteOutput): removals of 10 s
// and more happen under the bandwidth toxic.
const removeWithin = 30 * time.Second

// removeToxic detaches the toxic named name, waiting at most removeWithin
// so that a stuck pipeline fails the run instead of hanging it. It
// records how long the slowest removal took.
func (v *venue) removeToxic(name string) error {
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- v.proxy.Toxics.RemoveToxic(context.Background(), name) }()
	select {
	case err := <-done:
		v.net.noteRemoval(time.Since(start))
		if err != nil {
			return fmt.Errorf("%s: remove toxic %s: %w", v.name, name, err)
		}
		return nil
	case <-time.After(removeWithin):
		return fmt.Errorf("%s: remove toxic %s: still waiting after %v", v.name, name, removeWithin)
	}
}
