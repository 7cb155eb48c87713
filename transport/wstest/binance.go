package wstest

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// MaxConnAgeReason is the close reason used when a connection reaches the
// age set by WithMaxConnAge (close code 1001, going away).
const MaxConnAgeReason = "max connection age reached"

// ageLoop closes the connection d after it was accepted (WithMaxConnAge).
func (c *Conn) ageLoop(d time.Duration) {
	defer c.wg.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
	case <-t.C:
		_ = c.Disconnect(websocket.StatusGoingAway, MaxConnAgeReason)
	}
}

// SendServerShutdown sends Binance's maintenance announcement
//
//	{"event":{"e":"serverShutdown","E":<Unix ms>}}
//
// as a text message, after which a client is expected to move to a new
// connection. The connection stays open (see Send for the write's bounds);
// close it with Disconnect or WithMaxConnAge.
func (c *Conn) SendServerShutdown(ctx context.Context) error {
	b := []byte(`{"event":{"e":"serverShutdown","E":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `}}`)
	return c.write(ctx, websocket.MessageText, b)
}

// BinanceMaxStreams is how many streams the Binance simulator (WithBinance)
// lets one connection hold, as Binance does.
const BinanceMaxStreams = 1024

// CodeTooManyStreams is the error code of a SUBSCRIBE that would take a
// connection past BinanceMaxStreams.
const CodeTooManyStreams = -1

// WithBinance makes the server a small Binance simulator (spot market
// streams): {"method":"SUBSCRIBE","params":[...],"id":N} and UNSUBSCRIBE
// answer {"result":null,"id":N} and change the connection's subscription
// set (Conn.Subscribed, Conn.Channels); a SUBSCRIBE that would take the
// connection past BinanceMaxStreams streams is refused whole, with
// CodeTooManyStreams. Nothing is echoed. Publish events with PublishStream;
// count what a connection sent in any second with Conn.MaxInSecond.
func WithBinance() Option {
	return func(cfg *config) {
		cfg.echo = false
		cfg.responders["SUBSCRIBE"] = binanceSubscribe
		cfg.responders["UNSUBSCRIBE"] = binanceUnsubscribe
	}
}

func streamsParam(params json.RawMessage) ([]string, *RPCError) {
	var streams []string
	if err := json.Unmarshal(params, &streams); err != nil || len(streams) == 0 {
		return nil, invalidParams(`expected "params": [stream, ...]`)
	}
	return streams, nil
}

func binanceSubscribe(c *Conn, params json.RawMessage) (any, *RPCError) {
	streams, rpcErr := streamsParam(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	c.mu.Lock()
	n := len(c.channels)
	for _, s := range streams {
		if _, ok := c.channels[s]; !ok {
			n++
		}
	}
	c.mu.Unlock()
	if n > BinanceMaxStreams {
		return nil, &RPCError{Code: CodeTooManyStreams, Message: "Too many streams: " + strconv.Itoa(n) + " > " + strconv.Itoa(BinanceMaxStreams)}
	}
	c.Subscribe(streams...)
	return nil, nil
}

func binanceUnsubscribe(c *Conn, params json.RawMessage) (any, *RPCError) {
	streams, rpcErr := streamsParam(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	c.Unsubscribe(streams...)
	return nil, nil
}

// PublishStream sends a Binance combined-stream event
//
//	{"stream":stream,"data":data}
//
// to every open, non-stalled connection subscribed to stream and returns to
// how many it was written successfully (0 if data cannot be marshalled).
// The same bytes go to every connection.
func (s *Server) PublishStream(stream string, data any) int {
	b, err := json.Marshal(struct {
		Stream string `json:"stream"`
		Data   any    `json:"data"`
	}{stream, data})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range s.Conns() {
		if c.Stalled() || !c.Subscribed(stream) {
			continue
		}
		if c.write(context.Background(), websocket.MessageText, b) == nil {
			n++
		}
	}
	return n
}

// MaxInSecond is the most messages the connection sent the server in any
// rolling second, counted over the messages it recorded (WithCaptureLimit):
// what Binance compares with its 5 a second.
func (c *Conn) MaxInSecond() int {
	msgs := c.Received()
	most, lo := 0, 0
	for hi := range msgs {
		for msgs[hi].At.Sub(msgs[lo].At) >= time.Second {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}
