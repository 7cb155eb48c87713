package review13

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

// A spent budget: gone from ListClients in OnDisconnect and after Wait; the
// state chain ends with -> disconnected; supervisor logs name PIDs readably.
func TestBudgetSpentListAndChain(t *testing.T) {
	v := newVenue(t, false)
	logs, lg := observedLogger()
	sys := testutil.NewSystem(t)
	sup, err := supervision.Start(sys, supervision.WithRestartBudget(2, time.Minute), supervision.WithLogger(lg))
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Stop()
	var listedInDisc atomic.Int32
	var mu sync.Mutex
	var chain []actors.StateChange
	ctx := testutil.Context(t, 20*time.Second)
	c, err := sup.StartClient(ctx, v.url, actors.WithHeartbeat(actors.HeartbeatDisabled, 0),
		actors.WithRetryCount(0), actors.WithRetryDelay(5*time.Millisecond), actors.WithMaxBackoff(20*time.Millisecond),
		actors.WithLogger(lg),
		actors.WithStateObserver(func(sc actors.StateChange) { mu.Lock(); chain = append(chain, sc); mu.Unlock() }),
		actors.WithOnDisconnect(func(p *actor.PID) {
			if contains(sup.ListClients(), p) {
				listedInDisc.Store(1)
			} else {
				listedInDisc.Store(2)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	v.down.Store(true)
	v.dropAll()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Wait(wctx); err != nil {
		t.Fatalf("Wait: %v (restarts %d, state %v)", err, c.Health().Restarts, c.State())
	}
	if contains(sup.ListClients(), c.PID()) {
		t.Error("listed after Wait")
	}
	if listedInDisc.Load() != 2 {
		t.Errorf("OnDisconnect: listed state %d", listedInDisc.Load())
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	for i := 1; i < len(chain); i++ {
		if chain[i].From != chain[i-1].To {
			t.Errorf("chain break at %d: %v then From %v", i, chain[i-1].To, chain[i].From)
		}
	}
	if len(chain) == 0 || chain[len(chain)-1].To != actors.StateDisconnected {
		t.Errorf("chain does not end disconnected: %+v", chain)
	}
	if h := c.Health(); h.StopReason == nil {
		t.Error("StopReason nil after a spent budget")
	}
	mu.Unlock()
	for _, l := range logs.All() {
		line := l.Message + " " + fmt.Sprint(l.ContextMap())
		if strings.Contains(line, "Address:") || strings.Contains(line, "nonhost") {
			t.Errorf("unreadable PID in log: %s", line)
		}
	}
}

// Deribit debug lines: authenticating / authenticated with generation.
func TestDeribitDebugLines(t *testing.T) {
	v := newVenue(t, false)
	logs, lg := observedLogger()
	s, err := deribit.NewSession(deribit.Config{ClientID: "cid-2", ClientSecret: "another-secret-value-77", Logger: lg, DisableCancelOnDisconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sys := testutil.NewSystem(t)
	ctx := testutil.Context(t, 10*time.Second)
	c, err := actors.Connect(ctx, sys, v.url, append(baseOpts(actors.WithLogger(lg)), s.Options()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var authing, authed, hook bool
	for _, l := range logs.All() {
		m := l.ContextMap()
		switch l.Message {
		case "authenticating":
			authing = true
		case "authenticated":
			authed = true
			if _, ok := m["generation"]; !ok {
				t.Errorf("authenticated without generation: %v", m)
			}
		}
		if strings.HasPrefix(l.Message, "connect hook") {
			hook = true
		}
		if strings.Contains(l.Message+fmt.Sprint(m), "another-secret-value-77") {
			t.Errorf("secret in log: %s %v", l.Message, m)
		}
	}
	if !authing || !authed || !hook {
		t.Errorf("debug lines: authenticating %v authenticated %v connect hook %v", authing, authed, hook)
	}
}
