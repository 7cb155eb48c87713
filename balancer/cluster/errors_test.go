package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
	"github.com/zenws/zenws/transport"
)

// Every error a client returns crosses the wire as a code and comes back
// as an error errors.Is (or errors.As) matches, as the balancer's failover
// rule needs.
func TestErrorsCrossTheWire(t *testing.T) {
	for _, want := range []error{
		actors.ErrNotConnected, actors.ErrDisconnected, actors.ErrTimeout, actors.ErrRateLimited,
		actors.ErrClosed, actors.ErrNotFound, actors.ErrInvalidRequest, actors.ErrDuplicateID,
		context.DeadlineExceeded, context.Canceled,
	} {
		sent := fmt.Errorf("zenws: something: %w", want)
		got := errorOf(roundTrip(t, resultOf(nil, sent)), "b:1")
		if !errors.Is(got, want) {
			t.Errorf("%v came back as %v", want, got)
		}
	}

	// A client's timeout wraps ErrTimeout and the context's error: it must
	// stay a timeout (retried when retry-safe).
	timeout := fmt.Errorf("no response: %w: %w", actors.ErrTimeout, context.DeadlineExceeded)
	if got := errorOf(roundTrip(t, resultOf(nil, timeout)), "b:1"); !errors.Is(got, actors.ErrTimeout) {
		t.Errorf("timeout came back as %v", got)
	}
	// Not connected after a write that sent nothing.
	notSent := fmt.Errorf("%w: %w", actors.ErrNotConnected, transport.ErrNotSent)
	if got := errorOf(roundTrip(t, resultOf(nil, notSent)), "b:1"); !errors.Is(got, actors.ErrNotConnected) {
		t.Errorf("not sent came back as %v", got)
	}

	rpc := &actors.RPCError{Code: -32601, Message: "Method not found", Data: json.RawMessage(`{"m":"x"}`)}
	res := roundTrip(t, resultOf([]byte(`{"id":1,"error":{}}`), rpc))
	var got *actors.RPCError
	if err := errorOf(res, "b:1"); !errors.As(err, &got) || got.Code != rpc.Code || got.Message != rpc.Message || string(got.Data) != string(rpc.Data) {
		t.Errorf("RPC error came back as %#v", err)
	}
	if string(res.GetData()) != `{"id":1,"error":{}}` {
		t.Errorf("the response did not come back with the RPC error: %q", res.GetData())
	}

	other := errorOf(roundTrip(t, resultOf(nil, errors.New("disk on fire"))), "b:1")
	if !errors.Is(other, ErrRemote) || errors.Is(other, actors.ErrNotConnected) {
		t.Errorf("unknown error came back as %v", other)
	}
	if err := errorOf(roundTrip(t, resultOf([]byte("1"), nil)), "b:1"); err != nil {
		t.Errorf("success came back as %v", err)
	}
	overloaded := errorOf(&wire.OpResult{Code: wire.ErrorCode_ERROR_CODE_OVERLOADED, Message: "busy"}, "b:1")
	if !errors.Is(overloaded, actors.ErrRateLimited) {
		t.Errorf("overloaded came back as %v", overloaded)
	}
}

func roundTrip(t *testing.T, res *wire.OpResult) *wire.OpResult {
	t.Helper()
	data, err := proto.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	out := &wire.OpResult{}
	if err := proto.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
	return out
}
