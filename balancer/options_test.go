package balancer_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// One operation's options are a type of their own: a balancer's option
// (WithDiscovery, WithStrategy...) given to Send does not compile, where it
// used to be accepted and ignored.
func TestCallOptionsAreTheirOwnType(t *testing.T) {
	option, call := reflect.TypeOf(balancer.Option(nil)), reflect.TypeOf(balancer.CallOption(nil))
	if option == call || option.ConvertibleTo(call) {
		t.Fatalf("Option %v must not be usable as CallOption %v", option, call)
	}
	for name, fn := range map[string]any{
		"Send": (*balancer.Balancer).Send, "Request": (*balancer.Balancer).Request, "Call": (*balancer.Balancer).Call,
	} {
		ft := reflect.TypeOf(fn)
		if !ft.IsVariadic() || ft.In(ft.NumIn()-1).Elem() != call {
			t.Errorf("%s takes ...%v, want ...balancer.CallOption", name, ft.In(ft.NumIn()-1).Elem())
		}
	}
	if reflect.TypeOf(balancer.RetrySafe()) != call || reflect.TypeOf(balancer.CallMaxAttempts(1)) != call {
		t.Error("RetrySafe and CallMaxAttempts must be CallOptions")
	}
}

// CallMaxAttempts sets one operation's attempts over the balancer's
// WithMaxAttempts; below 1 it is a config error and nothing is sent.
func TestCallMaxAttemptsAppliesToOneCall(t *testing.T) {
	slow := wstest.WithResponder("slow", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		time.Sleep(200 * time.Millisecond)
		return true, nil
	})
	p := newPool(t, 3, []wstest.Option{slow}, actors.WithRequestTimeout(30*time.Millisecond))
	b := p.balancer(t, balancer.WithMaxAttempts(1))
	ctx := testutil.Context(t, 10*time.Second)
	if _, err := b.Call(ctx, "slow", nil, balancer.RetrySafe()); !errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("WithMaxAttempts(1): %v, want ErrMaxAttempts", err)
	}
	if f := b.Stats().Failovers; f != 0 {
		t.Fatalf("WithMaxAttempts(1): %d failovers, want 0", f)
	}
	if _, err := b.Call(ctx, "slow", nil, balancer.RetrySafe(), balancer.CallMaxAttempts(3)); !errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("CallMaxAttempts(3): %v, want ErrMaxAttempts", err)
	}
	if f := b.Stats().Failovers; f != 2 {
		t.Fatalf("CallMaxAttempts(3): %d failovers, want 2", f)
	}
	picks := func() (n uint64) {
		for _, ch := range b.PoolHealth() {
			n += ch.Picks
		}
		return n
	}
	before := picks()
	var cfgErr *actors.ConfigError
	if err := b.Send(ctx, []byte("x"), balancer.CallMaxAttempts(0)); !errors.As(err, &cfgErr) || cfgErr.Field != "CallMaxAttempts" {
		t.Fatalf("CallMaxAttempts(0): %v, want a *ConfigError naming CallMaxAttempts", err)
	}
	if n := picks(); n != before {
		t.Fatalf("CallMaxAttempts(0) picked a client (%d picks, was %d)", n, before)
	}
	time.Sleep(300 * time.Millisecond) // the servers finish the slow answers
}

// New waits for the first discovery at most WithStartWait (it used to wait
// a hidden 5 s), and not at all with 0.
func TestNewBoundedByStartWait(t *testing.T) {
	sys := testutil.NewSystem(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := func() []*actor.PID { <-release; return nil }
	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		start := time.Now()
		b, err := balancer.New(sys, balancer.WithDiscovery(stuck), balancer.WithStartWait(wait))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Stop() })
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Fatalf("New with WithStartWait(%v) took %v", wait, d)
		}
	}
	var cfgErr *actors.ConfigError
	if _, err := balancer.New(sys, balancer.WithStartWait(-time.Second)); !errors.As(err, &cfgErr) || cfgErr.Field != "StartWait" {
		t.Fatalf("negative StartWait: %v, want a *ConfigError naming StartWait", err)
	}
	if _, err := balancer.New(sys, balancer.WithStopWait(0)); !errors.As(err, &cfgErr) || cfgErr.Field != "StopWait" {
		t.Fatalf("zero StopWait: %v, want a *ConfigError naming StopWait", err)
	}
}

// Stop waits for the router at most WithStopWait, then says so with an
// error matching actors.ErrTimeout (it used to wait Proto.Actor's hidden
// 10 s future, then another 5 s).
func TestStopBoundedByStopWait(t *testing.T) {
	sys := testutil.NewSystem(t)
	entered, release := make(chan struct{}), make(chan struct{})
	remote := actor.NewPID("elsewhere:1", "client")
	// A resolver that does not return keeps the router's goroutine busy.
	resolver := func(*actor.PID) (balancer.Endpoint, bool) {
		close(entered)
		<-release
		return nil, false
	}
	b, err := balancer.New(sys,
		balancer.WithDiscovery(func() []*actor.PID { return []*actor.PID{remote} }),
		balancer.WithResolver(resolver), balancer.WithStartWait(0), balancer.WithStopWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	start := time.Now()
	err = b.Stop()
	if d := time.Since(start); !errors.Is(err, actors.ErrTimeout) || d > 2500*time.Millisecond {
		t.Fatalf("Stop of a stuck router: %v after %v, want ErrTimeout within the 100ms bound", err, d)
	}
	close(release)
	testutil.Eventually(t, 5*time.Second, "the router stopped once released", func() bool { return b.Stop() == nil })
}
