package deribit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zenws/zenws/actors"
)

// Orders stop with the connection: on every connection with credentials
// the session arms private/enable_cancel_on_disconnect (scope
// "connection") after public/auth and before public/set_heartbeat, so that
// Deribit cancels the orders placed on that connection when it closes
// (dropped, reset, a heartbeat that finds it dead; not after
// private/logout). A refusal fails the connection attempt, which is retried
// with backoff: the client never reports itself connected with the feature
// unarmed. Config.DisableCancelOnDisconnect turns it off.
//
// Orders go through Session.Order (Buy, Sell): it sends on the connection
// it checked, and only when cancel-on-disconnect is armed there, so that no
// order can reach a connection that would leave it open when it drops.

// ErrNotArmed is what Session.Order returns (as a *NotArmedError) when the
// client's current connection does not have cancel-on-disconnect armed:
// no connection, a connection still authenticating, one on which arming
// was not done. Nothing was sent.
var ErrNotArmed = errors.New("zenws/deribit: cancel-on-disconnect is not armed on the connection: order not sent")

// NotArmedError is ErrNotArmed for one connection.
type NotArmedError struct {
	Method     string
	Generation uint64 // the client's newest open connection, not armed (0: none)
}

// Error names the method and the connection.
func (e *NotArmedError) Error() string {
	return fmt.Sprintf("%v (%s, generation %d)", ErrNotArmed, e.Method, e.Generation)
}

// Is makes errors.Is(err, ErrNotArmed) true.
func (e *NotArmedError) Is(target error) bool { return target == ErrNotArmed }

// arm enables cancel-on-disconnect on setup's connection; a refusal or a
// failure fails the connection attempt (retried with backoff).
func (s *Session) arm(ctx context.Context, setup *actors.Setup) error {
	res, err := setup.Call(ctx, "private/enable_cancel_on_disconnect", map[string]string{"scope": "connection"})
	if err != nil {
		return fmt.Errorf("zenws/deribit: private/enable_cancel_on_disconnect: %w", err)
	}
	var ok string
	if json.Unmarshal(res, &ok) != nil || ok != "ok" {
		return fmt.Errorf("zenws/deribit: private/enable_cancel_on_disconnect answered %.64q, not \"ok\"", res)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ca := s.conns[setup.Generation()]
	if ca == nil || ca.setup != setup || ended(setup) {
		return fmt.Errorf("zenws/deribit: the connection ended while arming cancel-on-disconnect: %w", actors.ErrNotConnected)
	}
	ca.armed = true
	s.arms.Add(1)
	return nil
}

// armOn reports whether the session arms cancel-on-disconnect.
func (s *Session) armOn() bool { return s.cfg.ClientID != "" && !s.cfg.DisableCancelOnDisconnect }

// Armed reports whether the client has an open connection with
// cancel-on-disconnect armed, on which Order would send (always false with
// Config.DisableCancelOnDisconnect).
func (s *Session) Armed() bool {
	_, err := s.orderSetup("")
	return err == nil && s.armOn()
}

// Order sends an order request (method "private/buy", "private/sell",
// "private/edit", ...) on the client's newest connection that has
// cancel-on-disconnect armed (the current one; during a planned rotation
// the new one once armed) and returns its result; without such a
// connection it returns a *NotArmedError (errors.Is ErrNotArmed) and sends
// nothing. The request goes on the connection that was checked, never on
// a later one: if that connection ends meanwhile, the error wraps
// actors.ErrNotConnected or ErrDisconnected. It waits for the rate limiter
// within ctx, whatever the client's RatePolicy. With
// Config.DisableCancelOnDisconnect it sends on the newest authenticated
// connection without the check (actors.ErrNotConnected without one).
func (s *Session) Order(ctx context.Context, method string, params any) (json.RawMessage, error) {
	setup, err := s.orderSetup(method)
	if err != nil {
		return nil, err
	}
	return setup.Call(ctx, method, params)
}

// Buy is Order with "private/buy".
func (s *Session) Buy(ctx context.Context, params any) (json.RawMessage, error) {
	return s.Order(ctx, "private/buy", params)
}

// Sell is Order with "private/sell".
func (s *Session) Sell(ctx context.Context, params any) (json.RawMessage, error) {
	return s.Order(ctx, "private/sell", params)
}

// orderSetup is the Setup of the newest open connection an order may go
// on: armed (unless arming is off) and authenticated. During a planned
// rotation that is the new connection as soon as it is armed, so that an
// order is not placed on the one about to close (which would cancel it).
func (s *Session) orderSetup(method string) (*actors.Setup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *connAuth
	var newest, bestGen uint64
	for gen, ca := range s.conns {
		if ended(ca.setup) {
			continue
		}
		newest = max(newest, gen)
		if (ca.armed || !s.armOn()) && gen > bestGen {
			best, bestGen = ca, gen
		}
	}
	switch {
	case best == nil && !s.armOn():
		return nil, fmt.Errorf("zenws/deribit: %s: no authenticated connection: %w", method, actors.ErrNotConnected)
	case best == nil:
		return nil, &NotArmedError{Method: method, Generation: newest}
	}
	return best.setup, nil
}
