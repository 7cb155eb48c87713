package sysreg_test

import (
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/internal/sysreg"
	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// Each actor system has its own registry per name; goroutines asking for it
// at once on first use get the same one.
func TestRegistryPerSystem(t *testing.T) {
	a, b := testutil.NewSystem(t), testutil.NewSystem(t)
	var wg sync.WaitGroup
	regs := make([]*sysreg.Registry[*int], 8)
	for i := range regs {
		wg.Add(1)
		go func() { defer wg.Done(); regs[i] = sysreg.For[*int](a, "test/registry") }()
	}
	wg.Wait()
	for _, r := range regs[1:] {
		if r != regs[0] {
			t.Fatal("two registries for one name on one system")
		}
	}
	v := new(int)
	if got := regs[0].LoadOrStore("pid1", v); got != v {
		t.Fatal("LoadOrStore did not store")
	}
	if got := regs[0].LoadOrStore("pid1", new(int)); got != v {
		t.Fatal("LoadOrStore replaced the stored value")
	}
	if _, ok := sysreg.For[*int](b, "test/registry").Load("pid1"); ok {
		t.Fatal("another actor system sees this system's entry")
	}
	regs[0].CompareAndDelete("pid1", new(int))
	if got, ok := regs[0].Load("pid1"); !ok || got != v {
		t.Fatal("CompareAndDelete removed another value's entry")
	}
	regs[0].CompareAndDelete("pid1", v)
	if _, ok := regs[0].Load("pid1"); ok {
		t.Fatal("CompareAndDelete kept the entry")
	}
	// Sent to, it behaves as no actor: the message goes to the dead letters.
	a.Root.Send(actor.NewPID(a.Address(), "test/registry"), "hello")
}
