package actors

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Contexts derived from a life end with it, and a derived context that
// ended first leaves nothing registered (what an idle client keeps).
func TestLifeCancelsWhatDerivesFromIt(t *testing.T) {
	l := newLife()
	child, cancelChild := context.WithTimeout(l, time.Hour)
	ended, stopEnded := context.WithCancel(l)
	stopEnded()
	if l.fns == nil || l.fns.next != nil {
		t.Fatal("want exactly the live child registered")
	}
	called := make(chan struct{})
	stop := context.AfterFunc(l, func() { close(called) })
	stopped := context.AfterFunc(l, func() { t.Error("a stopped AfterFunc was called") })
	if !stopped() {
		t.Fatal("stop before cancel: want true")
	}
	if child.Err() != nil || l.Err() != nil {
		t.Fatal("ended before cancel")
	}
	l.cancel()
	l.cancel() // a second cancel does nothing
	<-child.Done()
	<-called
	if !errors.Is(child.Err(), context.Canceled) || !errors.Is(context.Cause(child), context.Canceled) || !errors.Is(l.Err(), context.Canceled) {
		t.Fatalf("child %v (cause %v), life %v: want context.Canceled", child.Err(), context.Cause(child), l.Err())
	}
	if !errors.Is(ended.Err(), context.Canceled) {
		t.Fatalf("the context cancelled first: %v", ended.Err())
	}
	if stop() {
		t.Fatal("stop after the call: want false")
	}
	if l.fns != nil {
		t.Fatal("registrations left after cancel")
	}
	cancelChild()

	// Derived from a life that has ended: ended at once.
	late, cancelLate := context.WithCancel(l)
	defer cancelLate()
	<-late.Done()

	// A child that ends first is unregistered: the list empties.
	l2 := newLife()
	for i := 0; i < 3; i++ {
		_, cancel := context.WithTimeout(l2, time.Hour)
		cancel()
	}
	if l2.fns != nil {
		t.Fatal("ended children still registered")
	}
	if _, ok := l2.Deadline(); ok || l2.Value("x") != nil {
		t.Fatal("a life has no deadline and no values")
	}
}
