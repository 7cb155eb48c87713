package review16

import (
	"fmt"
	"testing"
	"time"
)

// TestLargeSendOverASlowLinkIsNotALoss: liveness counts the receipt of a
// Pong and the answer to an operation; both wait behind a large
// operation on the link (the Ping is queued after it on A's stream to B).
// A link slower than (bytes in flight)/SilenceTimeout (here about 3 MB/s:
// a cross-region link under load, a throttled VPN) makes a live member
// that is busy receiving A's own operations look silent: after 3 s it is
// treated as lost, the operations in flight fail ErrDisconnected (for an
// order: "maybe executed"; B may still receive and run them: the next test), and B's client
// leaves A's table. 8 sends of 1.5 MiB (each under MaxWireMessage, the
// batch under RemoteOptions' 32 MiB), deadline 10 s each.
func TestLargeSendOverASlowLinkIsNotALoss(t *testing.T) {
	ps := freePorts(t, 6)
	px := newLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", ps[2]))
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 0, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1,
		Advertised: px.addr()})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}
	px.delay.Store(int64(10 * time.Millisecond)) // at most 32 KiB per 10 ms from A to B: about 3 MB/s
	px.set(slowAB)
	var rep callsReport
	getJSON(t, fmt.Sprintf("%s../ctl/big?n=8&size=%d", urlA, 3<<19), &rep)
	var st struct{ Silent uint64 }
	getJSON(t, urlA+"../ctl/stats", &st)
	if rep.Failed != 0 || st.Silent != 0 {
		t.Errorf("8 sends of 1.5 MiB through B over a 3 MB/s link, 10 s each: %d of 8 failed %q; B treated as silent %d times",
			rep.Failed, rep.Errors, st.Silent)
	}
}

// TestOrderBehindLargeSendsIsNotFailedWhileItFills: the same slow link;
// one order (not retry-safe) sent just after the large sends, so that it
// waits behind them on the link. A reports it failed ("member lost with
// the operation in flight": maybe executed), and the venue filled it:
// the operator is told an order of a live member may not have run, and
// a caller that resends it places it twice.
func TestOrderBehindLargeSendsIsNotFailedWhileItFills(t *testing.T) {
	venue := newCountingVenue(t)
	ps := freePorts(t, 6)
	px := newLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", ps[2]))
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	startNode(t, nodeConfig{RemotePort: ps[0], AutoPort: ps[1], Peers: peers, Label: "a", Clients: 0, PagePort: ps[4], MinHealthy: 1})
	startNode(t, nodeConfig{RemotePort: ps[2], AutoPort: ps[3], Peers: peers, Label: "b", Clients: 1, PagePort: ps[5], MinHealthy: 1,
		Advertised: px.addr(), VenueURL: venue.URL()})
	urlA := fmt.Sprintf("http://127.0.0.1:%d/zenws/", ps[4])
	if !waitFor(20*time.Second, func() bool { return remoteConnected(t, urlA) == 1 }) {
		t.Fatal("A never used B's client")
	}
	px.delay.Store(int64(10 * time.Millisecond))
	px.set(slowAB)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var rep callsReport
		getJSON(t, fmt.Sprintf("%s../ctl/big?n=8&size=%d", urlA, 3<<19), &rep)
	}()
	time.Sleep(100 * time.Millisecond)
	var rep struct {
		Filled []string
		Failed map[string]string
	}
	getJSON(t, urlA+"../ctl/orders?prefix=o&n=1&timeout=10s", &rep)
	<-done
	px.set(pass)
	waitFor(10*time.Second, func() bool { return venue.count("o-0") > 0 })
	if n := venue.count("o-0"); len(rep.Failed) != 0 && n > 0 {
		t.Errorf("an order behind large sends on a slow link: A says %q; the venue filled it %d time(s)", rep.Failed["o-0"], n)
	}
}
