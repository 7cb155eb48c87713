package wstest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/transport/wstest"
)

// The server echoes every message back.
func Example() {
	srv := wstest.NewServer()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()

	_ = c.Write(ctx, websocket.MessageText, []byte("hello"))
	typ, data, _ := c.Read(ctx)
	fmt.Println(typ, string(data))

	conns, _ := srv.WaitConns(ctx, 1)
	msgs, _ := conns[0].WaitReceived(ctx, 1)
	fmt.Println(len(msgs), string(msgs[0].Data))
	// Output:
	// MessageText hello
	// 1 hello
}

// A JSON-RPC responder; the reply carries the request's id unchanged.
func ExampleWithResponder() {
	srv := wstest.NewServer(wstest.WithResponder("public/get_index_price",
		func(_ *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
			var p struct {
				IndexName string `json:"index_name"`
			}
			if json.Unmarshal(params, &p) != nil || p.IndexName == "" {
				return nil, &wstest.RPCError{Code: wstest.CodeInvalidParams, Message: "Invalid params"}
			}
			return map[string]float64{"index_price": 50000}, nil
		}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()

	for _, req := range []string{
		`{"jsonrpc":"2.0","id":42,"method":"public/get_index_price","params":{"index_name":"btc_usd"}}`,
		`{"jsonrpc":"2.0","id":"x","method":"public/get_index_price","params":{}}`,
	} {
		_ = c.Write(ctx, websocket.MessageText, []byte(req))
		_, reply, _ := c.Read(ctx)
		fmt.Println(string(reply))
	}
	// Output:
	// {"jsonrpc":"2.0","id":42,"result":{"index_price":50000}}
	// {"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"Invalid params"}}
}

// Deribit mode: subscribe, then publish to the subscribers.
func ExampleWithDeribit() {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL()+"ws/api/v2", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()

	_ = c.Write(ctx, websocket.MessageText,
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["ticker.BTC-PERPETUAL.100ms"]}}`))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))

	n := srv.Publish("ticker.BTC-PERPETUAL.100ms", map[string]any{"mark_price": 50001.5})
	_, note, _ := c.Read(ctx)
	fmt.Println(n, string(note))
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":["ticker.BTC-PERPETUAL.100ms"]}
	// 1 {"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{"mark_price":50001.5}}}
}

// Deribit credentials: a signed public/auth, then a private method. Before
// authenticating, private methods answer 13009 "unauthorized".
func ExampleWithDeribitCredentials() {
	srv := wstest.NewServer(wstest.WithDeribitCredentials("my-client", "my-secret"))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL()+"ws/api/v2", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	call := func(req string) string {
		_ = c.Write(ctx, websocket.MessageText, []byte(req))
		_, reply, _ := c.Read(ctx)
		return string(reply)
	}

	fmt.Println(call(`{"jsonrpc":"2.0","id":1,"method":"private/get_account_summary","params":{"currency":"BTC"}}`))

	ts := time.Now().UnixMilli()
	sig := wstest.DeribitSignature("my-secret", ts, "abc123", "")
	var auth struct {
		Result struct {
			ExpiresIn int    `json:"expires_in"`
			TokenType string `json:"token_type"`
			Scope     string `json:"scope"`
		} `json:"result"`
	}
	_ = json.Unmarshal([]byte(call(fmt.Sprintf(
		`{"jsonrpc":"2.0","id":2,"method":"public/auth","params":{"grant_type":"client_signature","client_id":"my-client","timestamp":%d,"nonce":"abc123","data":"","signature":%q}}`,
		ts, sig))), &auth)
	fmt.Println(auth.Result.ExpiresIn, auth.Result.TokenType, auth.Result.Scope)

	fmt.Println(call(`{"jsonrpc":"2.0","id":3,"method":"private/get_account_summary","params":{"currency":"BTC"}}`))
	fmt.Println(srv.AuthCount())
	// Output:
	// {"jsonrpc":"2.0","id":1,"error":{"code":13009,"message":"unauthorized"}}
	// 900 bearer connection mainaccount
	// {"jsonrpc":"2.0","id":3,"result":{"available_funds":10,"balance":10,"currency":"BTC","equity":10,"margin_balance":10}}
	// 1
}

// An unanswered Deribit heartbeat closes the connection.
func ExampleWithDeribitHeartbeat() {
	srv := wstest.NewServer(wstest.WithDeribitHeartbeat(50 * time.Millisecond))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()

	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg))
	_, _, err = c.Read(ctx) // we never send public/test
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Reason)
	}
	// Output:
	// {"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}
	// StatusNormalClosure heartbeat timeout
}

func ExampleServer_RefuseHandshakes() {
	srv := wstest.NewServer()
	defer srv.Close()
	srv.RefuseHandshakes(http.StatusServiceUnavailable)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, srv.URL(), nil)
	fmt.Println(err != nil, resp.StatusCode)
	// Output:
	// true 503
}

func ExampleServer_DisconnectAll() {
	srv := wstest.NewServer()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()

	_, _ = srv.WaitConns(ctx, 1)
	srv.DisconnectAll(websocket.StatusServiceRestart, "restarting")
	fmt.Println(websocket.CloseStatus(<-readErr))
	// Output:
	// StatusServiceRestart
}

func ExampleConn_Drop() {
	srv := wstest.NewServer()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()

	conns, _ := srv.WaitConns(ctx, 1)
	conns[0].Drop()
	_, _, err = c.Read(ctx)
	fmt.Println(err != nil, int(websocket.CloseStatus(err))) // no close frame: -1
	// Output:
	// true -1
}

func ExampleConn_Stall() {
	srv := wstest.NewServer()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	c.CloseRead(ctx) // a reader is needed to receive pongs

	conns, _ := srv.WaitConns(ctx, 1)
	conns[0].Stall()
	pingCtx, pingCancel := context.WithTimeout(ctx, 100*time.Millisecond)
	fmt.Println("stalled:", c.Ping(pingCtx) != nil)
	pingCancel()

	conns[0].Resume()
	fmt.Println("resumed:", c.Ping(ctx) == nil)
	// Output:
	// stalled: true
	// resumed: true
}

func ExampleNewTLSServer() {
	srv := wstest.NewTLSServer()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL(), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: srv.ClientTLSConfig()}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()

	_ = c.Write(ctx, websocket.MessageText, []byte("secure"))
	_, data, _ := c.Read(ctx)
	fmt.Println(srv.URL()[:6], string(data))
	// Output:
	// wss:// secure
}

func ExampleNewBlackhole() {
	bh := wstest.NewBlackhole()
	defer bh.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := websocket.Dial(ctx, bh.URL(), nil)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output:
	// true
}

// The OKX simulator: a signed login, then a subscription and a data push.
func ExampleWithOKX() {
	srv := wstest.NewServer(wstest.WithOKXCredentials("key", "secret", "pass"))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.URL()+"ws/v5/private", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()

	ts := fmt.Sprint(time.Now().Unix())
	login := fmt.Sprintf(`{"id":"1","op":"login","args":[{"apiKey":"key","passphrase":"pass","timestamp":%q,"sign":%q}]}`,
		ts, wstest.OKXSign("secret", ts))
	_ = c.Write(ctx, websocket.MessageText, []byte(login))
	_, data, _ := c.Read(ctx)
	var ev struct{ ID, Event, Code string }
	_ = json.Unmarshal(data, &ev)
	fmt.Println(ev.ID, ev.Event, ev.Code)

	_ = c.Write(ctx, websocket.MessageText, []byte(`{"op":"subscribe","args":[{"channel":"orders"}]}`))
	_, data, _ = c.Read(ctx)
	_ = json.Unmarshal(data, &ev)
	fmt.Println(ev.Event)

	fmt.Println(srv.PublishOKX("orders", "", map[string]string{"ordId": "42"}))
	_, data, _ = c.Read(ctx)
	fmt.Println(string(data))
	// Output:
	// 1 login 0
	// subscribe
	// 1
	// {"arg":{"channel":"orders"},"data":[{"ordId":"42"}]}
}
