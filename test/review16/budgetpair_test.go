package review16

import (
	"fmt"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/budget"
)

// holderInfo is a node's /ctl/holder answer: the holder it names, its own
// address, and its counters of the rule's key.
type holderInfo struct {
	Holder, Self string
	Stats        budget.Stats
}

// budgetPair is two node processes without clients sharing one budget
// rule, each reached through a linkProxy of its own when proxied, that
// agree on which of them holds the window.
type budgetPair struct {
	px     []*linkProxy // nil unless proxied
	procs  []*proc
	ports  []int
	holder int // the index of the node that holds the window
}

// startBudgetPair starts the pair and waits (20 s at most) until both
// name the same holder, one of them.
func startBudgetPair(t *testing.T, rule budget.Rule, proxied bool) *budgetPair {
	t.Helper()
	p := &budgetPair{ports: freePorts(t, 6), holder: -1}
	ps := p.ports
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ps[1]), fmt.Sprintf("127.0.0.1:%d", ps[3])}
	for i := 0; i < 2; i++ {
		cfg := nodeConfig{RemotePort: ps[2*i], AutoPort: ps[2*i+1], Peers: peers, Label: "x", Clients: 0,
			PagePort: ps[4+i], MinHealthy: 1, Budget: rule}
		if proxied {
			p.px = append(p.px, newLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", ps[2*i])))
			cfg.Advertised = p.px[i].addr()
		}
		p.procs = append(p.procs, startNode(t, cfg))
	}
	if !waitFor(20*time.Second, func() bool {
		h := p.holders(t)
		if h[0].Holder == "" || h[0].Holder != h[1].Holder {
			return false
		}
		for i := 0; i < 2; i++ {
			if h[i].Self == h[i].Holder {
				p.holder = i
			}
		}
		return p.holder >= 0
	}) {
		t.Fatal("the two nodes never agreed on a holder")
	}
	return p
}

// ctl is node i's control URL prefix.
func (p *budgetPair) ctl(i int) string { return fmt.Sprintf("http://127.0.0.1:%d/ctl/", p.ports[4+i]) }

// holders asks both nodes whom they take for the holder.
func (p *budgetPair) holders(t *testing.T) [2]holderInfo {
	var h [2]holderInfo
	for i := 0; i < 2; i++ {
		getJSON(t, p.ctl(i)+"holder", &h[i])
	}
	return h
}
