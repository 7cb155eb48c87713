package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer/cluster/internal/wire"
)

// ErrRemote wraps an error from another node that matches none of the
// actors errors (ERROR_CODE_OTHER): nothing is known about whether the
// operation reached the server, so the balancer does not retry it.
var ErrRemote = errors.New("zenws/balancer/cluster: remote error")

// RemoteError is the last error of a client of another node, as that node
// wrote it (Health.LastError of the clients a cluster pool offers): its
// text, scrubbed of secrets by the client, clipped to 1,024 bytes. The
// error's type does not cross nodes; errors.Is(err, ErrRemote) is true.
type RemoteError struct {
	Text string
}

func (e *RemoteError) Error() string { return e.Text }

// Is makes a RemoteError match ErrRemote.
func (e *RemoteError) Is(target error) bool { return target == ErrRemote }

// ErrExpelled says another member took this one out of the cluster (see
// Agent.Expelled).
var ErrExpelled = errors.New("zenws/balancer/cluster: this member was taken out of the cluster")

// codeOf names the actors error err matches, for the wire. The order
// matters where an error wraps two: a client's timeout wraps both
// ErrTimeout and the context's error, and ErrTimeout is what the balancer's
// failover rule looks at.
func codeOf(err error) wire.ErrorCode {
	var rpcErr *actors.RPCError
	switch {
	case err == nil:
		return wire.ErrorCode_ERROR_CODE_NONE
	case errors.As(err, &rpcErr):
		return wire.ErrorCode_ERROR_CODE_RPC
	case errors.Is(err, actors.ErrNotConnected):
		return wire.ErrorCode_ERROR_CODE_NOT_CONNECTED
	case errors.Is(err, actors.ErrDisconnected):
		return wire.ErrorCode_ERROR_CODE_DISCONNECTED
	case errors.Is(err, actors.ErrTimeout):
		return wire.ErrorCode_ERROR_CODE_TIMEOUT
	case errors.Is(err, actors.ErrRateLimited):
		return wire.ErrorCode_ERROR_CODE_RATE_LIMITED
	case errors.Is(err, actors.ErrClosed):
		return wire.ErrorCode_ERROR_CODE_CLOSED
	case errors.Is(err, actors.ErrNotFound):
		return wire.ErrorCode_ERROR_CODE_NOT_FOUND
	case errors.Is(err, actors.ErrInvalidRequest):
		return wire.ErrorCode_ERROR_CODE_INVALID_REQUEST
	case errors.Is(err, actors.ErrDuplicateID):
		return wire.ErrorCode_ERROR_CODE_DUPLICATE_ID
	case errors.Is(err, context.DeadlineExceeded):
		return wire.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED
	case errors.Is(err, context.Canceled):
		return wire.ErrorCode_ERROR_CODE_CANCELED
	}
	return wire.ErrorCode_ERROR_CODE_OTHER
}

// sentinels: the error each code stands for on the caller's node.
var sentinels = map[wire.ErrorCode]error{
	wire.ErrorCode_ERROR_CODE_NOT_CONNECTED:     actors.ErrNotConnected,
	wire.ErrorCode_ERROR_CODE_DISCONNECTED:      actors.ErrDisconnected,
	wire.ErrorCode_ERROR_CODE_TIMEOUT:           actors.ErrTimeout,
	wire.ErrorCode_ERROR_CODE_RATE_LIMITED:      actors.ErrRateLimited,
	wire.ErrorCode_ERROR_CODE_OVERLOADED:        actors.ErrRateLimited,
	wire.ErrorCode_ERROR_CODE_CLOSED:            actors.ErrClosed,
	wire.ErrorCode_ERROR_CODE_NOT_FOUND:         actors.ErrNotFound,
	wire.ErrorCode_ERROR_CODE_INVALID_REQUEST:   actors.ErrInvalidRequest,
	wire.ErrorCode_ERROR_CODE_DUPLICATE_ID:      actors.ErrDuplicateID,
	wire.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED: context.DeadlineExceeded,
	wire.ErrorCode_ERROR_CODE_CANCELED:          context.Canceled,
}

// resultOf builds the answer to an operation from what the client returned.
func resultOf(data []byte, err error) *wire.OpResult {
	res := &wire.OpResult{Data: data, Code: codeOf(err)}
	if err == nil {
		return res
	}
	res.Message = err.Error()
	var rpcErr *actors.RPCError
	if errors.As(err, &rpcErr) {
		res.RpcCode = int64(rpcErr.Code)
		res.RpcMessage = rpcErr.Message
		res.RpcData = rpcErr.Data
	}
	return res
}

// errorOf rebuilds the error an OpResult carries, on the caller's node: a
// *actors.RPCError as the client returns it, or an error that wraps the
// matching actors error (so errors.Is and the balancer's failover rule work)
// and says which node answered.
func errorOf(res *wire.OpResult, node string) error {
	switch res.GetCode() {
	case wire.ErrorCode_ERROR_CODE_NONE:
		return nil
	case wire.ErrorCode_ERROR_CODE_RPC:
		e := &actors.RPCError{Code: int(res.GetRpcCode()), Message: res.GetRpcMessage()}
		if len(res.GetRpcData()) > 0 {
			e.Data = json.RawMessage(res.GetRpcData())
		}
		return e
	}
	base, ok := sentinels[res.GetCode()]
	if !ok {
		base = ErrRemote
	}
	return fmt.Errorf("zenws/balancer/cluster: on %s: %s: %w", node, res.GetMessage(), base)
}
