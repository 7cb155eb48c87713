package actors

import (
	"context"
	"sync"
	"time"
)

// life is the context of one clientActor instance: cancelled when the
// instance stops or restarts (teardown). It is a context of its own rather
// than context.WithCancel's for what an idle client keeps: a context
// derived from a WithCancel context (every dial's handshake timeout) is
// entered in a map that the parent keeps for good once made (about 250 B),
// where life keeps a list that empties as its children end. The context
// package finds its AfterFunc method and registers children there.
type life struct {
	mu    sync.Mutex
	done  chan struct{}
	fns   *lifeFn // the AfterFunc registrations not run or stopped yet
	ended bool    // cancelled: Err is context.Canceled
}

// lifeFn is one AfterFunc registration, in a doubly linked list.
type lifeFn struct {
	f          func()
	prev, next *lifeFn
}

func newLife() *life { return &life{done: make(chan struct{})} }

// Deadline: none.
func (l *life) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done is closed by cancel.
func (l *life) Done() <-chan struct{} { return l.done }

// Err is context.Canceled once cancelled, else nil.
func (l *life) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return context.Canceled
	}
	return nil
}

// Value: none.
func (l *life) Value(any) any { return nil }

// AfterFunc arranges for f to be called once l is cancelled, on the
// cancelling goroutine (at once, on its own goroutine, if l already is),
// as context.AfterFunc asks of a parent context that offers this method.
// stop unregisters f: true if that kept it from being called.
func (l *life) AfterFunc(f func()) (stop func() bool) {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	n := &lifeFn{f: f, next: l.fns}
	if l.fns != nil {
		l.fns.prev = n
	}
	l.fns = n
	l.mu.Unlock()
	return func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if n.f == nil {
			return false // called or stopped already
		}
		n.f = nil
		if n.prev != nil {
			n.prev.next = n.next
		} else {
			l.fns = n.next
		}
		if n.next != nil {
			n.next.prev = n.prev
		}
		n.prev, n.next = nil, nil
		return true
	}
}

// cancel ends l and calls what AfterFunc registered; later calls do nothing.
func (l *life) cancel() {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.ended = true
	close(l.done)
	var fns []func()
	for n := l.fns; n != nil; n = n.next {
		fns = append(fns, n.f)
		n.f = nil
	}
	l.fns = nil
	l.mu.Unlock()
	for _, f := range fns {
		f()
	}
}
