// Package binance is Binance's venue for the zenws client (spot market
// streams): its subscription dialect, its combined-stream notifications,
// its maintenance notice and its per-connection rate limit.
package binance

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
)

// Venue is Binance. Use it with actors.WithVenue(binance.Venue{}) (and the
// server-ping heartbeat, actors.WithHeartbeat(actors.HeartbeatBinance, ...)):
// the dialect below, combined-stream frames as notifications of their
// stream, serverShutdown as a maintenance notice (the client rotates ahead
// of it), and, unless the client has a limiter of its own,
// ratelimit.Binance() (5 messages in any second, as Binance counts them).
type Venue struct{}

// Name returns "binance".
func (Venue) Name() string { return "binance" }

// Dialect returns Dialect{}.
func (Venue) Dialect() venue.Dialect { return Dialect{} }

// MaxStreams implements venue.StreamLimited: Binance allows 1,024 streams
// on one connection (spot and futures).
func (Venue) MaxStreams() int { return MaxStreams }

// MaxStreams is how many streams Binance allows on one connection.
const MaxStreams = 1024

// RateLimit returns ratelimit.Binance().
func (Venue) RateLimit() *ratelimit.Limiter { return ratelimit.Binance() }

// SecretFields implements venue.Redactor: the user-data stream's listen
// key, and the signed request's signature and API key.
func (Venue) SecretFields() []string { return []string{"listenKey", "signature", "apiKey"} }

// Classify implements venue.Classifier: a combined-stream wrapper
// {"stream":"btcusdt@trade","data":{...}} is a notification of its stream;
// {"event":{"e":"serverShutdown",...}} is a maintenance notice.
func (Venue) Classify(data []byte) venue.Class {
	if ch, ok := jsonrpc.String(jsonrpc.Field(data, "stream")); ok && ch != "" && jsonrpc.Field(data, "data") != nil {
		return venue.Class{Channel: ch}
	}
	if ev := jsonrpc.Field(data, "event"); ev != nil {
		if e, _ := jsonrpc.String(jsonrpc.Field(ev, "e")); e == "serverShutdown" {
			return venue.Class{Maintenance: true}
		}
	}
	return venue.Class{}
}

// Dialect is Binance's subscriptions: {"method":"SUBSCRIBE","params":[...],
// "id":N}, and "result":null is success for every channel of the request.
// Binance allows 1024 streams per connection; requests carry at most 200
// each.
type Dialect struct{}

// Requests implements venue.Dialect.
func (Dialect) Requests(op venue.SubscriptionOp, channels []string) []venue.SubscriptionRequest {
	method := "SUBSCRIBE"
	if op == venue.OpUnsubscribe {
		method = "UNSUBSCRIBE"
	}
	var out []venue.SubscriptionRequest
	for len(channels) > 0 {
		n := min(len(channels), 200)
		out = append(out, venue.SubscriptionRequest{Op: op, Method: method, Channels: channels[:n]})
		channels = channels[n:]
	}
	return out
}

// Encode implements venue.Dialect.
func (Dialect) Encode(r venue.SubscriptionRequest, id uint64) ([]byte, error) {
	params, err := json.Marshal(r.Channels)
	if err != nil {
		return nil, err
	}
	b := []byte(`{"method":"` + r.Method + `","params":`)
	b = append(b, params...)
	return append(strconv.AppendUint(append(b, `,"id":`...), id, 10), '}'), nil
}

// Confirmed implements venue.Dialect: null confirms every channel.
func (Dialect) Confirmed(r venue.SubscriptionRequest, result json.RawMessage) ([]string, error) {
	if string(result) != "null" {
		return nil, fmt.Errorf("zenws: %s result is %s, want null", r.Method, result)
	}
	return r.Channels, nil
}

// Sequence implements venue.Sequencer for the depth streams of combined
// streams: a diff depth stream (<symbol>@depth, <symbol>@depth@100ms)
// carries U and u (an update holds the number after the last one's u) and,
// on futures, pu (the u of the update before); a partial book stream
// (<symbol>@depth5, @depth10@100ms, ...) is a full image each time, with
// its lastUpdateId. A diff depth stream is put back in sync from a REST
// snapshot the user fetches (venue.ResyncSnapshot, actors.WithSnapshot),
// with the deltas held meanwhile; a partial book needs nothing (each
// message is a full image). Other streams carry no sequence.
func (Venue) Sequence(channel string, data []byte) (venue.Seq, bool) {
	kind := depthKind(channel)
	if kind == 0 {
		return venue.Seq{}, false
	}
	var f [4][]byte // one walk of the event, however many levels it carries
	jsonrpc.Fields(jsonrpc.Field(data, "data"), f[:], "lastUpdateId", "U", "u", "pu")
	if kind == partialDepth {
		id, ok := jsonrpc.Uint(f[0])
		return venue.Seq{First: id, Last: id, Snapshot: true}, ok
	}
	first, ok1 := jsonrpc.Uint(f[1])
	last, ok2 := jsonrpc.Uint(f[2])
	if !ok1 || !ok2 || last < first {
		return venue.Seq{}, false
	}
	s := venue.Seq{First: first, Last: last, Resync: venue.ResyncSnapshot}
	if pu, ok := jsonrpc.Uint(f[3]); ok {
		s.Prev, s.HasPrev = pu, true
	}
	return s, true
}

const (
	diffDepth = iota + 1
	partialDepth
)

// depthKind tells a diff depth stream from a partial book one.
func depthKind(channel string) int {
	i := strings.Index(channel, "@depth")
	if i <= 0 {
		return 0
	}
	rest := channel[i+len("@depth"):]
	switch {
	case rest == "" || strings.HasPrefix(rest, "@"):
		return diffDepth
	case rest[0] >= '0' && rest[0] <= '9':
		return partialDepth
	}
	return 0
}
