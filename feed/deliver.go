package feed

import (
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
)

// output carries what the pool delivers from its actor to user code: a
// bounded queue and one goroutine for a handler, or straight sends to a
// subscriber actor.
type output struct {
	sys        *actor.ActorSystem
	subscriber *actor.PID
	handler    func(actors.Inbound)
	observer   func(Event)
	log        *zap.Logger

	items   chan item // nil without a handler or observer
	wg      sync.WaitGroup
	seq     uint64 // the actor's alone
	dropped atomic.Uint64
	panics  atomic.Uint64
	once    sync.Once
}

type item struct {
	in *actors.Inbound
	ev *Event
}

func newOutput(sys *actor.ActorSystem, o options) *output {
	out := &output{sys: sys, subscriber: o.subscriber, handler: o.handler, observer: o.observer, log: o.log}
	if out.handler != nil || out.observer != nil {
		out.items = make(chan item, o.queue)
		out.wg.Add(1)
		go out.run()
	}
	return out
}

// inbound numbers in and hands it on; it never blocks.
func (o *output) inbound(in *actors.Inbound) {
	o.seq++
	in.Seq = o.seq
	switch {
	case o.subscriber != nil:
		o.sys.Root.Send(o.subscriber, in)
	case o.handler != nil:
		o.push(item{in: in})
	default:
		o.dropped.Add(1)
	}
}

func (o *output) event(ev Event) {
	switch {
	case o.subscriber != nil:
		o.sys.Root.Send(o.subscriber, &ev)
	case o.observer != nil:
		o.push(item{ev: &ev})
	}
}

func (o *output) push(it item) {
	select {
	case o.items <- it:
	default:
		if it.in != nil {
			o.dropped.Add(1)
		}
	}
}

func (o *output) run() {
	defer o.wg.Done()
	for it := range o.items {
		o.call(it)
	}
}

func (o *output) call(it item) {
	defer func() {
		if r := recover(); r != nil {
			o.panics.Add(1)
			o.log.Error("feed: user code panicked", zap.Any("panic", r))
		}
	}()
	switch {
	case it.in != nil && o.handler != nil:
		o.handler(*it.in)
	case it.ev != nil && o.observer != nil:
		o.observer(*it.ev)
	}
}

// close ends the goroutine once what is queued has run.
func (o *output) close() {
	o.once.Do(func() {
		if o.items != nil {
			close(o.items)
		}
	})
	o.wg.Wait()
}
