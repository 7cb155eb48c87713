// Package deribit is Deribit's venue for the zenws client: its
// subscription dialect and its per-connection rate limits. (Authentication,
// token refresh and the heartbeat's set-up are the session adapter in
// package actors/deribit, built on this one.)
package deribit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
)

// Venue is Deribit. Use it with actors.WithVenue(deribit.Venue{}): the
// dialect below and, unless the client has a limiter of its own, Limiter.
type Venue struct {
	// Limiter is the sub-account's limiter (ratelimit.Deribit(tier)):
	// Deribit counts credits per sub-account across its connections, so
	// give every client of the account the same one. Nil: no limiter.
	Limiter *ratelimit.Limiter
}

// Name returns "deribit".
func (Venue) Name() string { return "deribit" }

// Dialect returns Dialect{}.
func (Venue) Dialect() venue.Dialect { return Dialect{} }

// RateLimit returns v.Limiter.
func (v Venue) RateLimit() *ratelimit.Limiter { return v.Limiter }

// SecretFields implements venue.Redactor: public/auth's credentials and
// signature, and the tokens it answers with.
func (Venue) SecretFields() []string {
	return []string{"client_secret", "signature", "access_token", "refresh_token"}
}

// ProbeRequest implements venue.Prober: public/test.
func (Venue) ProbeRequest(id uint64) []byte {
	return []byte(`{"jsonrpc":"2.0","id":` + strconv.FormatUint(id, 10) + `,"method":"public/test","params":{}}`)
}

// HeartbeatFrame implements venue.Prober: a "heartbeat" notification is
// heartbeat traffic; one of type "test_request" asks for a public/test at
// once (Deribit closes the connection otherwise).
func (Venue) HeartbeatFrame(data []byte) (heartbeat, answer bool) {
	if m, _ := jsonrpc.String(jsonrpc.Field(data, "method")); m != "heartbeat" {
		return false, false
	}
	typ, _ := jsonrpc.String(jsonrpc.Field(jsonrpc.Field(data, "params"), "type"))
	return true, typ == "test_request"
}

// Dialect is Deribit's subscriptions: public/subscribe and
// public/unsubscribe with {"channels":[...]}; channels starting with
// "user." go through private/subscribe and private/unsubscribe (they need
// authentication). The result lists the channels the server applied (a
// channel it does not know is left out).
type Dialect struct{}

// Requests implements venue.Dialect.
func (Dialect) Requests(op venue.SubscriptionOp, channels []string) []venue.SubscriptionRequest {
	verb := "subscribe"
	if op == venue.OpUnsubscribe {
		verb = "unsubscribe"
	}
	var public, private []string
	for _, ch := range channels {
		if strings.HasPrefix(ch, "user.") {
			private = append(private, ch)
		} else {
			public = append(public, ch)
		}
	}
	var out []venue.SubscriptionRequest
	if len(public) > 0 {
		out = append(out, venue.SubscriptionRequest{Op: op, Method: "public/" + verb, Channels: public})
	}
	if len(private) > 0 {
		out = append(out, venue.SubscriptionRequest{Op: op, Method: "private/" + verb, Channels: private})
	}
	return out
}

// Encode implements venue.Dialect.
func (Dialect) Encode(r venue.SubscriptionRequest, id uint64) ([]byte, error) {
	return jsonrpc.Build(id, r.Method, map[string][]string{"channels": r.Channels})
}

// Confirmed implements venue.Dialect: the result is the list of channels.
func (Dialect) Confirmed(r venue.SubscriptionRequest, result json.RawMessage) ([]string, error) {
	var got []string
	if err := json.Unmarshal(result, &got); err != nil {
		return nil, fmt.Errorf("zenws: %s result is not a list of channels: %s", r.Method, result)
	}
	return got, nil
}

// Sequence implements venue.Sequencer for the order book channels
// (book.*): a "change" carries change_id and prev_change_id and follows the
// update whose change_id is its prev_change_id; a "snapshot" (the first
// message after a subscribe), or a grouped book's message (a full image of
// the top levels each time, without prev_change_id), starts the sequence
// again. A book is put back in sync by subscribing it again, alone
// (venue.ResyncResubscribe): its first message is a fresh snapshot. Other
// channels carry no sequence.
func (Venue) Sequence(channel string, data []byte) (venue.Seq, bool) {
	if !strings.HasPrefix(channel, "book.") {
		return venue.Seq{}, false
	}
	var f [3][]byte // one walk of the update, however many levels it carries
	jsonrpc.Fields(venue.Path(data, "params", "data"), f[:], "change_id", "type", "prev_change_id")
	id, ok := jsonrpc.Uint(f[0])
	if !ok {
		return venue.Seq{}, false
	}
	s := venue.Seq{First: id, Last: id, Resync: venue.ResyncResubscribe}
	typ, _ := jsonrpc.String(f[1])
	prev, hasPrev := jsonrpc.Uint(f[2])
	switch {
	case typ == "snapshot":
		s.Snapshot = true
	case hasPrev:
		s.Prev, s.HasPrev = prev, true
	case typ == "change" || f[2] != nil:
		return venue.Seq{}, false // a change whose place cannot be read: not a full image
	default:
		s.Snapshot = true // a grouped book: each message is a full image
	}
	return s, true
}
