package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/internal/ctxerr"
	"github.com/zenws/zenws/internal/redact"
	"github.com/zenws/zenws/transport"
)

var (
	// ErrDuplicateID: a request with the same id is already pending on this
	// client; nothing was sent.
	ErrDuplicateID = errors.New("zenws: a request with this id is already pending")
	// ErrInvalidRequest: Request got a message that is not a JSON object
	// with an integer or string "id"; nothing was sent.
	ErrInvalidRequest = errors.New("zenws: invalid request")
)

// RPCError is a JSON-RPC error object from the server. Call and Request
// return it (never a success) when the response carries "error". Message is
// the object's "message", or its "msg" when it has no "message" (Binance:
// {"code":2,"msg":"Invalid request"}).
//
// Message and Data are the venue's answer as it came (a venue may echo the
// request's params there, credentials included): the program reads them
// whole. Error, and GoString (%#v), never show a secret: Data goes through
// the recording redactor (secret-named members masked, a Data that cannot
// be verified replaced by a placeholder), Message through its plain-text
// rules ("client_secret=x", "token: x", bearer credentials, URLs,
// secret-looking words), and, for an error a client returned, the whole
// text loses that client's known secrets (see WithSecrets).
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`

	secrets *redact.Scrubber // the client's, when a client made it
}

// Error implements the error interface.
func (e *RPCError) Error() string {
	var text string
	if len(e.Data) > 0 {
		text = fmt.Sprintf("zenws: JSON-RPC error %d: %s (data: %s)", e.Code, e.secrets.Text(e.Message), e.secrets.Frame(e.Data))
	} else {
		text = fmt.Sprintf("zenws: JSON-RPC error %d: %s", e.Code, e.secrets.Text(e.Message))
	}
	return e.secrets.String(text)
}

// GoString implements fmt.GoStringer: %#v shows the fields redacted as in
// Error (the fields themselves stay raw for the program).
func (e *RPCError) GoString() string {
	if e == nil {
		return "(*actors.RPCError)(nil)"
	}
	text := fmt.Sprintf("&actors.RPCError{Code:%d, Message:%q, Data:%q}", e.Code, e.secrets.Text(e.Message), e.secrets.Frame(e.Data))
	return e.secrets.String(text)
}

// Call sends a JSON-RPC 2.0 request for method with params (nil, a
// json.RawMessage, or any value encoding/json marshals) under an id from the
// client's own sequence, and returns the response's "result". A response
// with "error" returns a *RPCError. The deadline is the earlier of ctx's
// and RequestTimeout (default 30 s); on timeout the error wraps ErrTimeout
// and context.DeadlineExceeded, and a late response is counted
// (Health.LateResponses) and dropped; when ctx is cancelled the error wraps
// context.Canceled (not ErrTimeout). Either also wraps transport.ErrNotSent
// when the request ended before any byte of it was written (waiting for
// the rate limiter or its turn to write): it never reached the server. When
// the connection is lost while waiting, the error wraps ErrDisconnected
// (the server may or may not have executed it). Not connected:
// ErrNotConnected at once, nothing sent.
func (c *Client) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	d := c.durable()
	if d == nil {
		return nil, ErrNotFound
	}
	return d.callMethod(ctx, via{}, method, params)
}

// callMethod is Call on the connection v names: Client.Call and
// Setup.Call.
func (d *durable) callMethod(ctx context.Context, v via, method string, params any) (json.RawMessage, error) {
	a, err := d.call(ctx, v, func(id uint64) ([]byte, error) { return jsonrpc.Build(id, method, params) })
	if err != nil {
		return nil, err
	}
	return a.result, nil
}

// Request sends msg, a JSON object carrying its own JSON-RPC "id" (an
// integer or a string), and returns the whole response object with the
// same id. When the response carries "error", the error is a *RPCError
// (and the response is returned too). A second pending request with the
// same id returns ErrDuplicateID and sends nothing. An answer counts only
// on the connection the request went out on. An id reused after a request
// with it gave up on the same connection takes the second answer with that
// id: the first is the late answer of the one that gave up (counted in
// Health.LateResponses). Deadlines and errors as for Call.
func (c *Client) Request(ctx context.Context, msg []byte) (json.RawMessage, error) {
	d := c.durable()
	if d == nil {
		return nil, ErrNotFound
	}
	return d.request(ctx, via{}, msg)
}

// request sends msg as v says and waits for the response with the same id.
func (d *durable) request(ctx context.Context, v via, msg []byte) (json.RawMessage, error) {
	if err := d.notSent(ctx); err != nil {
		return nil, err
	}
	if !utf8.Valid(msg) || !json.Valid(msg) {
		return nil, fmt.Errorf("%w: not valid JSON text", ErrInvalidRequest)
	}
	env, ok := jsonrpc.Peek(msg)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidRequest)
	}
	key, ok := parseKey(env.ID)
	if !ok {
		return nil, fmt.Errorf("%w: the \"id\" must be an integer or a string, got %q", ErrInvalidRequest, env.ID)
	}
	call, err := d.pending.register(key, d.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	a, err := d.send(ctx, v, call, msg)
	return a.resp, err
}

// answer is a request's response: the whole object, the venue's reading
// of it (nil for a JSON-RPC one, so that nobody correlates it again), and
// its "result" (read once: from the envelope the reader peeked).
type answer struct {
	resp   json.RawMessage
	vr     *venue.Response
	result json.RawMessage
}

// send writes msg, registered as call, and waits for its response. The
// deadline (the earlier of ctx's and RequestTimeout) runs from the
// registration; only a write already in progress can outlast it, by at most
// WriteTimeout. It releases call.
func (d *durable) send(ctx context.Context, v via, call *pendingCall, msg []byte) (answer, error) {
	defer call.release()
	start := call.start
	// The waits before the write (the rate limiter, the write queue) see
	// RequestTimeout as ctx's deadline; the wait for the response has the
	// table's timer. No context or timer of its own.
	call.ctx = boundCtx{Context: ctx, dl: call.deadline}
	bctx := &call.ctx
	conn, gen, err := d.admitAndResolve(bctx, v, msg)
	if err == nil {
		call.conn.Store(conn)
		err = d.writeOn(bctx, conn, gen, websocket.MessageText, msg)
	}
	if err != nil {
		if !d.pending.abandon(call, false) {
			<-call.done // failed meanwhile (the connection ended): its result is on the way
		}
		if ctx.Err() != nil || !time.Now().Before(call.deadline) {
			// Not ErrDisconnected: it ended while it waited for its
			// tokens or its turn to write, and nothing of it left.
			return answer{}, d.timeoutError(ctx, start, errors.Is(err, ErrDisconnected))
		}
		return answer{}, err
	}
	d.pending.await(call)
	var r pendingResult
	done := ctx.Done()
	if done == nil { // context.Background: the table's timer ends the wait
		r = <-call.done
	} else {
		select {
		case r = <-call.done:
		case <-done:
			if d.pending.abandon(call, true) {
				return answer{}, d.timeoutError(ctx, start, true)
			}
			// The response (or the disconnect) won the race: use it.
			r = <-call.done
		}
	}
	if r.expired {
		return answer{}, d.timeoutError(ctx, start, true)
	}
	if r.err != nil {
		return answer{}, r.err
	}
	rtt := time.Since(start)
	d.latency.add(rtt)
	d.tel.roundTrip(rtt)
	if r.vr != nil {
		env, _ := jsonrpc.Peek(r.resp)
		a := answer{resp: r.resp, vr: r.vr, result: env.Result}
		if e := r.vr.Err; e != nil {
			return a, &RPCError{Code: e.Code, Message: e.Message, secrets: d.secrets}
		}
		return a, nil
	}
	env := r.env
	if env.ID == nil { // not peeked on the reader
		env, _ = jsonrpc.Peek(r.resp)
	}
	a := answer{resp: r.resp, result: env.Result}
	if hasError(env) {
		rpcErr := parseRPCError(env.Error)
		rpcErr.secrets = d.secrets
		return a, rpcErr
	}
	return a, nil
}

// hasError: a response carries an error unless "error" is absent or null.
func hasError(env jsonrpc.Envelope) bool {
	return env.Error != nil && string(env.Error) != "null"
}

// timeoutError says why a request stopped waiting: the caller cancelled
// ctx (the error wraps context.Canceled, not ErrTimeout: nothing timed
// out), or a deadline passed, the caller's or RequestTimeout (it wraps
// ErrTimeout and context.DeadlineExceeded). sent is false when it ended
// before any byte of it was written (while it waited for the rate limiter
// or its turn to write): the error then also wraps transport.ErrNotSent,
// so that a caller (and a balancer) can tell it never reached the venue.
func (d *durable) timeoutError(ctx context.Context, start time.Time, sent bool) error {
	waited := time.Since(start).Round(time.Millisecond)
	waiting, ended := "waiting for the response", "no response after"
	if !sent {
		waiting, ended = "waiting to send", "no turn to send within"
	}
	var err error
	if errors.Is(ctx.Err(), context.Canceled) {
		err = fmt.Errorf("zenws: cancelled after %v %s: %w", waited, waiting, ctxerr.Of(ctx))
	} else {
		cause := ctxerr.Of(ctx)
		if cause == nil { // RequestTimeout passed (the pending table keeps it), not ctx's deadline
			cause = context.DeadlineExceeded
		}
		err = fmt.Errorf("zenws: %s %v (request timeout %v): %w: %w", ended, waited, d.cfg.RequestTimeout, ErrTimeout, cause)
	}
	if sent {
		return err
	}
	return fmt.Errorf("%w (%w)", err, transport.ErrNotSent)
}

// ctxEnded is why a wait of what ended with ctx: past its deadline an
// error wrapping ErrTimeout and context.DeadlineExceeded (as a request's
// timeout); cancelled, one wrapping context.Canceled alone.
func ctxEnded(what string, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("zenws: %s: %w: %w", what, ErrTimeout, ctxerr.Of(ctx))
	}
	return fmt.Errorf("zenws: %s: %w", what, ctxerr.Of(ctx))
}

// notSent is the guard of the request paths (Call, Request, Subscribe,
// Unsubscribe, and Setup's): a nil ctx is ErrNilContext; an ended one sends
// nothing: cancelled, an error wrapping context.Canceled; past its
// deadline, like a deadline reached while waiting, an error wrapping
// ErrTimeout and context.DeadlineExceeded.
func (d *durable) notSent(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	if ctx.Err() == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("zenws: not sent, the context was cancelled: %w", ctxerr.Of(ctx))
	}
	return fmt.Errorf("zenws: not sent, the context's deadline had passed: %w: %w", ErrTimeout, ctxerr.Of(ctx))
}

// call sends a request built with an id from the client's sequence,
// skipping ids a Request of the user's holds at the moment.
func (d *durable) call(ctx context.Context, v via, build func(id uint64) ([]byte, error)) (answer, error) {
	if err := d.notSent(ctx); err != nil {
		return answer{}, err
	}
	for {
		id := d.ids.Add(1)
		msg, err := build(id)
		if err != nil {
			return answer{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
		}
		key := intKey(id)
		if d.correlator {
			// A venue's own requests may spell the id as a string (OKX):
			// its answers carry it so.
			if env, ok := jsonrpc.Peek(msg); ok {
				if k, ok := parseKey(env.ID); ok {
					key = k
				}
			}
		}
		pc, err := d.pending.register(key, d.cfg.RequestTimeout)
		if errors.Is(err, ErrDuplicateID) {
			continue
		}
		if err != nil {
			return answer{}, err
		}
		return d.send(ctx, v, pc, msg)
	}
}

// parseRPCError reads a JSON-RPC error object; one that is not an object
// with a code still comes back as an *RPCError that says so.
func parseRPCError(raw []byte) *RPCError {
	var w struct {
		RPCError
		Msg *string `json:"msg"` // the spelling of "message" several venues use (Binance, OKX)
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return &RPCError{Message: "malformed error object", Data: json.RawMessage(raw)}
	}
	e := w.RPCError
	if e.Message == "" && w.Msg != nil && !hasMember(raw, "message") {
		e.Message = *w.Msg
	}
	if e.Message == "" && e.Code == 0 {
		e.Message = "error object without code or message"
		e.Data = json.RawMessage(raw)
	}
	return &e
}

// hasMember reports whether the JSON object obj has the member key.
func hasMember(obj []byte, key string) bool { return jsonrpc.Field(obj, key) != nil }
