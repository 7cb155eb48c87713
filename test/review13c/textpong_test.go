package review13c

import (
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
)

// A text pong on the draining old connection answers the new connection's
// ping (durable.textPong ignores the generation: one pongs channel per
// client): a new connection that never answers its pings is kept as healthy
// for as long as the old one drains (up to RequestTimeout / 30 s).
func TestOldConnPongAnswersNewConnPing(t *testing.T) {
	t.Run("control: no late pongs", func(t *testing.T) { oldConnPongs(t, false) })
	t.Run("late pongs on the old connection", func(t *testing.T) { oldConnPongs(t, true) })
}

func oldConnPongs(t *testing.T, spam bool) {
	v, err := okx.New(okx.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cs := newConnSet()
	stop := make(chan struct{})
	defer close(stop)
	pe := newRawPeer(t, func(rc *rawConn) {
		cs.put(rc)
		if rc.idx == 0 && spam { // the old connection: pongs every 20 ms (late pongs)
			go func() {
				tk := time.NewTicker(20 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tk.C:
						if rc.text("pong") != nil {
							return
						}
					}
				}
			}()
		}
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if string(raw) == "ping" { // only the first connection answers its pings
				if rc.idx == 0 {
					_ = rc.text("pong")
				}
				return true
			}
			return strings.Contains(string(raw), "hold")
		})
	})
	c := dial(t, pe.URL, nil, actors.WithVenue(v), actors.WithHeartbeat(actors.HeartbeatText, 100*time.Millisecond),
		actors.WithRequestTimeout(20*time.Second))
	// A request held on the old connection keeps it draining after the switch.
	errc := make(chan error, 1)
	go func() { _, err := c.Request(ctxT(t, 20*time.Second), []byte(`{"id":"h1","op":"hold"}`)); errc <- err }()
	if !eventually(t, 5*time.Second, "held request pending", func() bool { return c.Health().Pending == 1 }) {
		t.Fatalf("the held request: %v", <-errc)
	}
	if err := c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	g := c.Health().Generation
	// The new connection answers no ping: within a few intervals it must be
	// found dead (misses counted, reconnected).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && c.Health().HeartbeatMisses == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	if h := c.Health(); h.HeartbeatMisses == 0 && h.Generation == g {
		t.Errorf("the new connection (gen %d) answered no ping for 5 s (50 intervals) and counts as healthy: the old connection's pongs answered them", g)
	}
}
