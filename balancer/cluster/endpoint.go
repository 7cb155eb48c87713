package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// remoteClient is the balancer's endpoint for a client held by another
// member: each operation goes, as an Op, to the agent on that member.
type remoteClient struct {
	sh  *shared
	n   *node
	pid *actor.PID
}

// The router of package balancer asks an endpoint with these methods to
// deliver its client's health, instead of sending a health registration
// to the client (a plain Go message cannot cross nodes).
var _ interface {
	WatchHealth(router *actor.PID)
	UnwatchHealth(router *actor.PID)
} = (*remoteClient)(nil)

// PID is the client actor's PID on its member.
func (r *remoteClient) PID() *actor.PID { return r.pid }

// Send is Client.Send on the client's member.
func (r *remoteClient) Send(ctx context.Context, msg []byte) error {
	_, err := r.do(ctx, &wire.Op{Kind: wire.OpKind_OP_KIND_SEND, Data: msg})
	return err
}

// Request is Client.Request on the client's member.
func (r *remoteClient) Request(ctx context.Context, msg []byte) (json.RawMessage, error) {
	return r.do(ctx, &wire.Op{Kind: wire.OpKind_OP_KIND_REQUEST, Data: msg})
}

// Call is Client.Call on the client's member; params are encoded here.
func (r *remoteClient) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	var data []byte
	switch v := params.(type) {
	case nil:
	case json.RawMessage:
		data = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: params: %w", actors.ErrInvalidRequest, err)
		}
		data = b
	}
	return r.do(ctx, &wire.Op{Kind: wire.OpKind_OP_KIND_CALL, Method: method, Data: data})
}

// WatchHealth asks this node's agent to push the client's health to
// router, and *actor.Terminated when the client or its member is gone.
func (r *remoteClient) WatchHealth(router *actor.PID) {
	r.sh.sys.Root.Send(r.sh.pid.Load(), &watchReq{client: r.pid, router: router})
}

// UnwatchHealth ends a WatchHealth.
func (r *remoteClient) UnwatchHealth(router *actor.PID) {
	r.sh.sys.Root.Send(r.sh.pid.Load(), &unwatchReq{client: r.pid, router: router})
}

// do sends op to the agent on the client's member and waits for its answer,
// the loss of that member, or the end of the caller's deadline.
func (r *remoteClient) do(ctx context.Context, op *wire.Op) (json.RawMessage, error) {
	n := r.n
	if n.closing.Load() {
		return nil, fmt.Errorf("zenws/balancer/cluster: %s on %s: the member left or was lost; nothing sent: %w",
			r.pid.Id, n.address, actors.ErrNotConnected)
	}
	if n := len(op.GetData()) + len(op.GetMethod()); n > MaxWireMessage {
		return nil, fmt.Errorf("zenws/balancer/cluster: %d bytes are over the %d that may cross nodes; nothing sent: %w",
			n, MaxWireMessage, actors.ErrInvalidRequest)
	}
	start := time.Now()
	timeout := r.sh.o.timeout
	deadline, ok := ctx.Deadline()
	if ok {
		timeout = deadline.Sub(start)
	} else {
		deadline = start.Add(timeout)
	}
	if ctx.Err() != nil || timeout <= 0 {
		return nil, fmt.Errorf("zenws/balancer/cluster: deadline passed before sending; nothing sent: %w: %w",
			actors.ErrTimeout, contextErr(ctx))
	}
	size := int64(len(op.GetData()) + len(op.GetMethod()))
	n.sending.Add(size)
	defer n.sending.Add(-size)
	op.ClientId = r.pid.Id
	op.TimeoutNs = int64(timeout)
	op.DeadlineUnixNs = deadline.UnixNano()
	rp := newReply(r.sh.sys)
	defer rp.close()
	r.sh.sys.Root.RequestWithCustomSender(n.agent, op, rp.pid)
	t := time.NewTimer(timeout)
	defer t.Stop()
	var m any
	select {
	case m = <-rp.ch:
	case <-n.lost:
		select { // an answer already in wins over the loss
		case m = <-rp.ch:
		default:
			return nil, fmt.Errorf("zenws/balancer/cluster: member %s lost with the operation in flight: %w",
				n.address, actors.ErrDisconnected)
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("zenws/balancer/cluster: no answer from %s after %v: %w: %w",
			n.address, time.Since(start).Round(time.Millisecond), actors.ErrTimeout, context.Cause(ctx))
	case <-t.C:
		return nil, fmt.Errorf("zenws/balancer/cluster: no answer from %s after %v: %w",
			n.address, time.Since(start).Round(time.Millisecond), actors.ErrTimeout)
	}

	switch m := m.(type) {
	case *wire.OpResult:
		n.noteAnswer()
		var data json.RawMessage
		if len(m.GetData()) > 0 {
			data = m.GetData()
		}
		return data, errorOf(m, n.address)
	case *actor.DeadLetterResponse:
		return nil, fmt.Errorf("zenws/balancer/cluster: the agent on %s is unreachable; nothing sent: %w",
			n.address, actors.ErrNotConnected)
	}
	return nil, fmt.Errorf("zenws/balancer/cluster: unexpected answer %T from %s: %w", m, n.address, ErrRemote)
}

func contextErr(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// reply is a process in the actor system's registry that receives the
// answer to one operation: unlike a Future it can be waited on together
// with the caller's context and the loss of the member.
type reply struct {
	sys *actor.ActorSystem
	pid *actor.PID
	ch  chan any
}

func newReply(sys *actor.ActorSystem) *reply {
	r := &reply{sys: sys, ch: make(chan any, 1)}
	r.pid, _ = sys.ProcessRegistry.Add(replyProcess{ch: r.ch}, "zenws-op"+sys.ProcessRegistry.NextId())
	return r
}

func (r *reply) close() { r.sys.ProcessRegistry.Remove(r.pid) }

type replyProcess struct{ ch chan any }

var _ actor.Process = replyProcess{}

func (p replyProcess) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case p.ch <- msg:
	default: // a second answer: only the first counts
	}
}

func (p replyProcess) SendSystemMessage(*actor.PID, any) {}

func (p replyProcess) Stop(*actor.PID) {}
