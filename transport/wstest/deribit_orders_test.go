package wstest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/transport/wstest"
)

// authed dials srv and authenticates; the order id of each buy follows.
func authed(t *testing.T, srv *wstest.Server) (*websocket.Conn, *clientReader) {
	t.Helper()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	wantCode(t, rpc(t, c, r, credsAuth(1, testClientID, testSecret)), 0)
	return c, r
}

func buyID(t *testing.T, c *websocket.Conn, r *clientReader, id int) string {
	t.Helper()
	return result(t, rpc(t, c, r, buy(id, "x")))["order"].(map[string]any)["order_id"].(string)
}

func TestDeribitCancelOnDisconnect(t *testing.T) {
	for _, kill := range []struct {
		name string
		end  func(c *websocket.Conn, sc *wstest.Conn)
	}{
		{"client close", func(c *websocket.Conn, _ *wstest.Conn) { _ = c.Close(websocket.StatusNormalClosure, "") }},
		{"client reset", func(c *websocket.Conn, _ *wstest.Conn) { _ = c.CloseNow() }},
		{"server drop", func(_ *websocket.Conn, sc *wstest.Conn) { sc.Drop() }},
	} {
		t.Run(kill.name, func(t *testing.T) {
			srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret))
			defer srv.Close()
			armed, ar := authed(t, srv)
			armedConn := waitConn(t, srv)
			if got := result(t, rpc(t, armed, ar, `{"jsonrpc":"2.0","id":2,"method":"private/get_cancel_on_disconnect","params":{}}`)); got["enabled"] != false || got["scope"] != "connection" {
				t.Fatalf("before arming: %v", got)
			}
			if m := rpc(t, armed, ar, `{"jsonrpc":"2.0","id":3,"method":"private/enable_cancel_on_disconnect","params":{"scope":"connection"}}`); m["result"] != "ok" {
				t.Fatalf("enable: %v", m)
			}
			if got := result(t, rpc(t, armed, ar, `{"jsonrpc":"2.0","id":4,"method":"private/get_cancel_on_disconnect","params":{}}`)); got["enabled"] != true {
				t.Fatalf("after arming: %v", got)
			}
			if !armedConn.CancelOnDisconnectArmed() || srv.CancelOnDisconnectArms() != 1 {
				t.Fatal("armed connection not seen as armed")
			}
			o1 := buyID(t, armed, ar, 5)

			plain, pr := authed(t, srv)
			o2 := buyID(t, plain, pr, 2)

			kill.end(armed, armedConn)
			if err := srv.WaitOrderState(testCtx(t, 5*time.Second), o1, "cancelled"); err != nil {
				t.Fatal(err)
			}
			if o, _ := srv.Order(o1); o["cancel_reason"] != wstest.CancelOnDisconnectReason {
				t.Fatalf("cancelled order: %v", o)
			}
			// The other connection's order is not affected, and nothing of
			// it changes when that connection (not armed) drops too.
			_ = plain.CloseNow()
			if err := srv.WaitConnCount(testCtx(t, 5*time.Second), 0); err != nil {
				t.Fatal(err)
			}
			if o, _ := srv.Order(o2); o["order_state"] != "open" {
				t.Fatalf("order of an unarmed connection: %v", o)
			}
		})
	}
}

func TestDeribitCancelOnDisconnectScopesAndRefusal(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret))
	defer srv.Close()
	c, r := authed(t, srv)
	wantCode(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":2,"method":"private/enable_cancel_on_disconnect","params":{"scope":"galaxy"}}`), wstest.CodeInvalidParams)
	srv.RefuseCancelOnDisconnect(1)
	wantCode(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":3,"method":"private/enable_cancel_on_disconnect","params":{}}`), wstest.CodeInternalError)
	if waitConn(t, srv).CancelOnDisconnectArmed() {
		t.Fatal("a refused enable armed the connection")
	}
	if m := rpc(t, c, r, `{"jsonrpc":"2.0","id":4,"method":"private/enable_cancel_on_disconnect","params":{"scope":"account"}}`); m["result"] != "ok" {
		t.Fatalf("enable account: %v", m)
	}
	c2, r2 := authed(t, srv)
	if got := result(t, rpc(t, c2, r2, `{"jsonrpc":"2.0","id":2,"method":"private/get_cancel_on_disconnect","params":{"scope":"account"}}`)); got["enabled"] != true {
		t.Fatalf("account scope: %v", got)
	}
	if got := result(t, rpc(t, c2, r2, `{"jsonrpc":"2.0","id":3,"method":"private/get_cancel_on_disconnect","params":{}}`)); got["enabled"] != true {
		t.Fatalf("a new connection under the account scope: %v", got)
	}
	if m := rpc(t, c2, r2, `{"jsonrpc":"2.0","id":4,"method":"private/disable_cancel_on_disconnect","params":{}}`); m["result"] != "ok" {
		t.Fatalf("disable: %v", m)
	}
	if got := result(t, rpc(t, c2, r2, `{"jsonrpc":"2.0","id":5,"method":"private/get_cancel_on_disconnect","params":{}}`)); got["enabled"] != false {
		t.Fatalf("after disable: %v", got)
	}
	// Unauthenticated: 13009.
	c3 := dial(t, srv, "/", nil)
	r3 := startReader(t, c3)
	wantCode(t, rpc(t, c3, r3, `{"jsonrpc":"2.0","id":1,"method":"private/enable_cancel_on_disconnect","params":{}}`), wstest.CodeUnauthorized)
}

func TestDeribitFillsOpenOrdersAndTradeHistory(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret))
	defer srv.Close()
	c, r := authed(t, srv)
	wantCode(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":2,"method":"private/subscribe","params":{"channels":["user.trades.BTC-PERPETUAL.raw"]}}`), 0)
	o1, o2 := buyID(t, c, r, 3), buyID(t, c, r, 4)
	if _, err := srv.FillOrder("nope", 1); err == nil {
		t.Fatal("filled an order that does not exist")
	}
	t1, err := srv.FillOrder(o1, 4)
	if err != nil {
		t.Fatal(err)
	}
	n := r.nextJSON(t) // the notification of the trade
	if p := n["params"].(map[string]any); p["channel"] != "user.trades.BTC-PERPETUAL.raw" || p["data"].([]any)[0].(map[string]any)["trade_id"] != t1.TradeID {
		t.Fatalf("notification %v", n)
	}
	var trades []wstest.DeribitTrade
	trades = append(trades, t1)
	for _, f := range []struct {
		id  string
		amt float64
	}{{o1, 0}, {o2, 1}, {o2, 2}} {
		tr, err := srv.FillOrder(f.id, f.amt)
		if err != nil {
			t.Fatal(err)
		}
		trades = append(trades, tr)
		_ = r.nextJSON(t)
	}
	if _, err := srv.FillOrder(o1, 1); err == nil {
		t.Fatal("filled a filled order")
	}
	for i, tr := range trades {
		if tr.TradeSeq != uint64(i+1) || (i > 0 && tr.Timestamp < trades[i-1].Timestamp) {
			t.Fatalf("trade %d: %+v", i, tr)
		}
	}
	open := rpc(t, c, r, `{"jsonrpc":"2.0","id":5,"method":"private/get_open_orders","params":{}}`)["result"].([]any)
	if len(open) != 1 || open[0].(map[string]any)["order_id"] != o2 || open[0].(map[string]any)["filled_amount"] != 3.0 {
		t.Fatalf("open orders %v", open)
	}
	// Pages of two, ascending, from the second trade: has_more until the end.
	res := result(t, rpc(t, c, r, fmt.Sprintf(`{"jsonrpc":"2.0","id":6,"method":"private/get_user_trades_by_currency","params":{"currency":"BTC","start_id":%q,"count":2,"sorting":"asc"}}`, trades[1].TradeID)))
	got := res["trades"].([]any)
	if len(got) != 2 || res["has_more"] != true || got[0].(map[string]any)["trade_id"] != trades[1].TradeID || got[1].(map[string]any)["trade_id"] != trades[2].TradeID {
		t.Fatalf("page 1: %v", res)
	}
	res = result(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":7,"method":"private/get_user_trades_by_instrument","params":{"instrument_name":"BTC-PERPETUAL","start_seq":4,"count":2,"sorting":"asc"}}`))
	if got := res["trades"].([]any); len(got) != 1 || res["has_more"] != false || got[0].(map[string]any)["trade_seq"] != 4.0 {
		t.Fatalf("by instrument: %v", res)
	}
	res = result(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":8,"method":"private/get_user_trades_by_currency","params":{"currency":"ETH"}}`))
	if got := res["trades"].([]any); len(got) != 0 || res["has_more"] != false {
		t.Fatalf("another currency: %v", res)
	}
	wantCode(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":9,"method":"private/get_user_trades_by_currency","params":{"currency":"BTC","count":1001}}`), wstest.CodeInvalidParams)
	if len(srv.Trades()) != 4 {
		t.Fatalf("Trades() = %v", srv.Trades())
	}
}
