// Package testutil holds helpers shared by zenws's own tests: the goroutine
// leak check with the few Proto.Actor goroutines it must ignore, and a tiny
// DNS server on 127.0.0.1 that answers "no such host".
package testutil

import (
	"testing"

	"go.uber.org/goleak"
)

// LeakOptions are the goleak options every zenws test package uses. Each
// ignored goroutine belongs to Proto.Actor, not to zenws, and is listed
// with the reason it outlives a test:
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		// A dead letter starts a throttle goroutine that sleeps for the
		// throttle interval (1 s) before it exits; a message to an actor
		// that just stopped is enough to start one.
		// (Its name depends on inlining, hence both spellings.)
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	}
}

// VerifyTestMain runs the package's tests and fails if goroutines are left
// behind, apart from those LeakOptions names.
// It first checks whether this process is a server started by
// ServerProcess, and serves instead of testing if so.
func VerifyTestMain(m *testing.M) {
	serveIfChild()
	goleak.VerifyTestMain(m, LeakOptions()...)
}
