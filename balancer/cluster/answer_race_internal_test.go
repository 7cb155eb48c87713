package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// fakeAgent answers an Op at once and then the member is seen lost:
// the answer is in rp.ch before do's select runs.
type fakeAgent struct {
	sys *actor.ActorSystem
	n   *node
}

func (f *fakeAgent) SendUserMessage(_ *actor.PID, m any) {
	_, _, sender := actor.UnwrapEnvelope(m)
	p, _ := f.sys.ProcessRegistry.Get(sender)
	p.SendUserMessage(sender, &wire.OpResult{Data: []byte(`"ok"`)})
	f.n.markLost()
}
func (f *fakeAgent) SendSystemMessage(*actor.PID, any) {}
func (f *fakeAgent) Stop(*actor.PID)                   {}

func TestAnswerLostToLossRace(t *testing.T) {
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	sh := &shared{sys: sys, o: newOptions(nil)}
	disc := 0
	for i := 0; i < 200; i++ {
		n := newNode("b", sys.Address(), "fake-agent")
		sys.ProcessRegistry.Remove(n.agent)
		if _, ok := sys.ProcessRegistry.Add(&fakeAgent{sys: sys, n: n}, "fake-agent"); !ok {
			t.Fatal("add")
		}
		rc := &remoteClient{sh: sh, n: n, pid: actor.NewPID(sys.Address(), "c1")}
		_, err := rc.Call(context.Background(), "private/buy", nil)
		if errors.Is(err, actors.ErrDisconnected) {
			disc++
		}
		sys.ProcessRegistry.Remove(n.agent)
	}
	t.Logf("answered orders reported as ErrDisconnected: %d of 200", disc)
	if disc > 0 {
		t.Fail()
	}
}
