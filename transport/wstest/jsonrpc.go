package wstest

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Responder answers one JSON-RPC request received on c. params is the raw
// "params" member of the request (nil if absent). A non-nil err is sent as
// the "error" member of the reply; otherwise result is marshalled with
// encoding/json as the "result" member (nil becomes null; a json.RawMessage
// is sent as is).
//
// Responders run on the connection's read goroutine: while one runs, no
// further messages are read from that connection (which keeps replies in
// request order). A responder may call methods of c, including Send,
// Disconnect and Drop, but must not wait for c.Done.
type Responder func(c *Conn, params json.RawMessage) (result any, err *RPCError)

// RPCError is a JSON-RPC 2.0 error object.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// Error implements the error interface.
func (e *RPCError) Error() string {
	return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message)
}

// Standard JSON-RPC 2.0 error codes, for use in responders.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// rpcRequest is an incoming message that looks like a JSON-RPC request.
type rpcRequest struct {
	method string
	id     json.RawMessage // raw bytes of the "id" member; nil when absent
	params json.RawMessage
}

// parseRequest reports whether data is a JSON object with a string "method"
// member, and returns its parts. The raw bytes of "id" are kept exactly.
func parseRequest(data []byte) (rpcRequest, bool) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return rpcRequest{}, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return rpcRequest{}, false
	}
	rawMethod, ok := m["method"]
	if !ok {
		return rpcRequest{}, false
	}
	var method string
	if err := json.Unmarshal(rawMethod, &method); err != nil || method == "" {
		return rpcRequest{}, false
	}
	return rpcRequest{method: method, id: m["id"], params: m["params"]}, true
}

// encodeReply builds a JSON-RPC 2.0 response for id. id must be valid JSON.
func encodeReply(id json.RawMessage, result any, rpcErr *RPCError) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	if rpcErr == nil {
		res, err := json.Marshal(result)
		if err == nil {
			b.WriteString(`,"result":`)
			b.Write(res)
			b.WriteByte('}')
			return b.Bytes()
		}
		rpcErr = &RPCError{Code: CodeInternalError, Message: "wstest: cannot marshal result: " + err.Error()}
	}
	e, err := json.Marshal(rpcErr)
	if err != nil {
		// Data could not be marshalled; drop it.
		e, _ = json.Marshal(&RPCError{Code: rpcErr.Code, Message: rpcErr.Message})
	}
	b.WriteString(`,"error":`)
	b.Write(e)
	b.WriteByte('}')
	return b.Bytes()
}

// encodeNotification builds a JSON-RPC 2.0 notification (no id).
func encodeNotification(method string, params any) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("wstest: marshal params: %w", err)
	}
	m, err := json.Marshal(method)
	if err != nil {
		return nil, fmt.Errorf("wstest: marshal method: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","method":`)
	b.Write(m)
	b.WriteString(`,"params":`)
	b.Write(p)
	b.WriteByte('}')
	return b.Bytes(), nil
}
