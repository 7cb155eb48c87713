package wstest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/transport/wstest"
)

const (
	testClientID = "client-1"
	testSecret   = "s3cret-value"
)

// rpc sends one request and returns the next message, decoded.
func rpc(t *testing.T, c *websocket.Conn, r *clientReader, req string) map[string]any {
	t.Helper()
	write(t, c, websocket.MessageText, req)
	return r.nextJSON(t)
}

// errCode returns the reply's error code, or 0 if it has a result.
func errCode(t *testing.T, m map[string]any) int {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		if _, ok := m["result"]; !ok {
			t.Fatalf("neither result nor error: %v", m)
		}
		return 0
	}
	return int(e["code"].(float64))
}

func wantCode(t *testing.T, m map[string]any, code int) {
	t.Helper()
	if got := errCode(t, m); got != code {
		t.Fatalf("error code %d, want %d: %v", got, code, m)
	}
}

func result(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	wantCode(t, m, 0)
	res, ok := m["result"].(map[string]any)
	if !ok {
		t.Fatalf("result is not an object: %v", m)
	}
	return res
}

func credsAuth(id int, clientID, secret string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":%q,"client_secret":%q}}`, id, clientID, secret)
}

func sigAuth(id int, clientID string, ts int64, nonce, data, sig string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"public/auth","params":{"grant_type":"client_signature","client_id":%q,"timestamp":%d,"nonce":%q,"data":%q,"signature":%q}}`, id, clientID, ts, nonce, data, sig)
}

func refreshAuth(id int, token string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"public/auth","params":{"grant_type":"refresh_token","refresh_token":%q}}`, id, token)
}

func req(id int, method string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{}}`, id, method)
}

func buy(id int, label string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"private/buy","params":{"instrument_name":"BTC-PERPETUAL","amount":10,"type":"limit","price":50000,"label":%q}}`, id, label)
}

// hmacHex signs independently of wstest.DeribitSignature.
func hmacHex(secret string, ts int64, nonce, data string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d\n%s\n%s", ts, nonce, data)
	return hex.EncodeToString(mac.Sum(nil))
}

// waitClosed reads until the connection ends and returns the close error.
func waitClosed(t *testing.T, r *clientReader) error {
	t.Helper()
	for {
		res := r.next(t, 5*time.Second)
		if res.err != nil {
			return res.err
		}
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestDeribitClientCredentials(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret))
	defer srv.Close()
	c := dial(t, srv, "/ws/api/v2", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	// Private methods need auth, including private/subscribe once
	// credentials are configured.
	wantCode(t, rpc(t, c, r, req(1, "private/get_account_summary")), wstest.CodeUnauthorized)
	m := rpc(t, c, r, `{"jsonrpc":"2.0","id":2,"method":"private/subscribe","params":{"channels":["user.orders.any.any.raw"]}}`)
	wantCode(t, m, wstest.CodeUnauthorized)
	if e := m["error"].(map[string]any); e["message"] != "unauthorized" {
		t.Fatalf("error %v", e)
	}

	for _, tc := range []struct {
		req  string
		code int
	}{
		{credsAuth(3, testClientID, "wrong-secret"), wstest.CodeInvalidCredentials},
		{credsAuth(4, "other-client", testSecret), wstest.CodeInvalidCredentials},
		{`{"jsonrpc":"2.0","id":5,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":"client-1"}}`, wstest.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":6,"method":"public/auth","params":{"client_id":"client-1","client_secret":"x"}}`, wstest.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":7,"method":"public/auth","params":{"grant_type":"password"}}`, wstest.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":8,"method":"public/auth","params":"nope"}`, wstest.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":9,"method":"public/auth"}`, wstest.CodeInvalidParams},
	} {
		write(t, c, websocket.MessageText, tc.req)
		got := r.nextMsg(t)
		var m map[string]any
		if err := json.Unmarshal(got.data, &m); err != nil {
			t.Fatal(err)
		}
		wantCode(t, m, tc.code)
		if strings.Contains(string(got.data), "wrong-secret") || strings.Contains(string(got.data), testSecret) {
			t.Fatalf("reply leaks a secret: %s", got.data)
		}
		if tc.code == wstest.CodeInvalidCredentials && m["error"].(map[string]any)["message"] != "invalid_credentials" {
			t.Fatalf("error %v", m)
		}
	}
	if sc.Authenticated() || sc.AuthCount() != 0 || srv.AuthCount() != 0 {
		t.Fatalf("failed auths counted: %v %d %d", sc.Authenticated(), sc.AuthCount(), srv.AuthCount())
	}

	res := result(t, rpc(t, c, r, credsAuth(10, testClientID, testSecret)))
	access, _ := res["access_token"].(string)
	refresh, _ := res["refresh_token"].(string)
	if !hex32.MatchString(access) || !hex32.MatchString(refresh) || access == refresh ||
		res["expires_in"] != float64(900) || res["token_type"] != "bearer" || res["scope"] != "connection mainaccount" {
		t.Fatalf("auth result %v", res)
	}
	if !sc.Authenticated() || sc.AuthCount() != 1 || srv.AuthCount() != 1 ||
		strings.Join(sc.AuthGrants(), ",") != "client_credentials" {
		t.Fatalf("Authenticated=%v AuthCount=%d/%d grants=%v", sc.Authenticated(), sc.AuthCount(), srv.AuthCount(), sc.AuthGrants())
	}
	if err := srv.WaitAuthCount(testCtx(t, time.Second), 1); err != nil {
		t.Fatal(err)
	}

	sum := result(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":11,"method":"private/get_account_summary","params":{"currency":"ETH"}}`))
	if sum["currency"] != "ETH" {
		t.Fatalf("account summary %v", sum)
	}
	got := rpc(t, c, r, `{"jsonrpc":"2.0","id":12,"method":"private/subscribe","params":{"channels":["user.orders.any.any.raw"]}}`)
	wantCode(t, got, 0)
	if !sc.Subscribed("user.orders.any.any.raw") {
		t.Fatal("not subscribed")
	}
}

func TestDeribitClientSignature(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	ts := time.Now().UnixMilli()
	sig := hmacHex(testSecret, ts, "n1", "")
	if wstest.DeribitSignature(testSecret, ts, "n1", "") != sig {
		t.Fatal("DeribitSignature differs from HMAC-SHA256(secret, ts\\nnonce\\ndata)")
	}
	res := result(t, rpc(t, c, r, sigAuth(1, testClientID, ts, "n1", "", sig)))
	if res["scope"] != "connection mainaccount" || !hex32.MatchString(res["access_token"].(string)) {
		t.Fatalf("auth result %v", res)
	}
	// "data" may be omitted (it is then "").
	ts2 := ts + 1
	m := rpc(t, c, r, fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"public/auth","params":{"grant_type":"client_signature","client_id":%q,"timestamp":%d,"nonce":"n1","signature":%q}}`,
		testClientID, ts2, hmacHex(testSecret, ts2, "n1", "")))
	wantCode(t, m, 0)

	stale := time.Now().Add(-61 * time.Second).UnixMilli()
	future := time.Now().Add(61 * time.Second).UnixMilli()
	for _, tc := range []struct {
		name string
		req  string
		code int
	}{
		{"nonce reused with the same timestamp", sigAuth(3, testClientID, ts, "n1", "", sig), wstest.CodeInvalidCredentials},
		{"signed with another secret", sigAuth(4, testClientID, ts, "n2", "", hmacHex("other", ts, "n2", "")), wstest.CodeInvalidCredentials},
		{"data not covered by the signature", sigAuth(5, testClientID, ts, "n3", "extra", hmacHex(testSecret, ts, "n3", "")), wstest.CodeInvalidCredentials},
		{"uppercase hex", sigAuth(6, testClientID, ts, "n4", "", strings.ToUpper(hmacHex(testSecret, ts, "n4", ""))), wstest.CodeInvalidCredentials},
		{"stale timestamp", sigAuth(7, testClientID, stale, "n5", "", hmacHex(testSecret, stale, "n5", "")), wstest.CodeInvalidCredentials},
		{"future timestamp", sigAuth(8, testClientID, future, "n6", "", hmacHex(testSecret, future, "n6", "")), wstest.CodeInvalidCredentials},
		{"wrong client_id", sigAuth(9, "other", ts, "n7", "", hmacHex(testSecret, ts, "n7", "")), wstest.CodeInvalidCredentials},
		{"empty nonce", sigAuth(10, testClientID, ts, "", "", hmacHex(testSecret, ts, "", "")), wstest.CodeInvalidParams},
		{"no timestamp", `{"jsonrpc":"2.0","id":11,"method":"public/auth","params":{"grant_type":"client_signature","client_id":"client-1","nonce":"n","signature":"ab"}}`, wstest.CodeInvalidParams},
		{"valid with data", sigAuth(12, testClientID, ts, "n8", "some data", hmacHex(testSecret, ts, "n8", "some data")), 0},
	} {
		if got := errCode(t, rpc(t, c, r, tc.req)); got != tc.code {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.code)
		}
	}
	if sc.AuthCount() != 3 || srv.AuthCount() != 3 || strings.Join(sc.AuthGrants(), ",") != "client_signature,client_signature,client_signature" {
		t.Fatalf("AuthCount=%d/%d grants=%v", sc.AuthCount(), srv.AuthCount(), sc.AuthGrants())
	}
}

func TestDeribitTokenExpiryAndRefresh(t *testing.T) {
	const ttl = 500 * time.Millisecond
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret), wstest.WithDeribitTokenTTL(ttl))
	defer srv.Close()
	c1 := dial(t, srv, "/", nil)
	r1 := startReader(t, c1)
	sc1 := waitConn(t, srv)

	res := result(t, rpc(t, c1, r1, credsAuth(1, testClientID, testSecret)))
	if res["expires_in"] != float64(1) {
		t.Fatalf("expires_in %v, want 1 for a sub-second TTL", res["expires_in"])
	}
	refresh1 := res["refresh_token"].(string)

	eventually(t, 5*time.Second, "token expiry", func() bool { return !sc1.Authenticated() })
	wantCode(t, rpc(t, c1, r1, buy(2, "")), wstest.CodeUnauthorized)
	if srv.Orders() != 0 {
		t.Fatalf("Orders = %d after an unauthorized buy", srv.Orders())
	}

	// A refresh token works on any connection, once.
	c2 := dial(t, srv, "/", nil)
	r2 := startReader(t, c2)
	conns, err := srv.WaitConns(testCtx(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	sc2 := conns[1]
	res = result(t, rpc(t, c2, r2, refreshAuth(1, refresh1)))
	refresh2 := res["refresh_token"].(string)
	if refresh2 == refresh1 || strings.Join(sc2.AuthGrants(), ",") != "refresh_token" {
		t.Fatalf("refresh result %v grants %v", res, sc2.AuthGrants())
	}
	wantCode(t, rpc(t, c1, r1, refreshAuth(3, refresh1)), wstest.CodeInvalidCredentials)
	wantCode(t, rpc(t, c1, r1, refreshAuth(4, "not-a-token")), wstest.CodeInvalidCredentials)
	wantCode(t, rpc(t, c1, r1, `{"jsonrpc":"2.0","id":5,"method":"public/auth","params":{"grant_type":"refresh_token"}}`), wstest.CodeInvalidParams)

	// Re-authenticating renews the expired connection. The auth and the
	// order are written back to back, so the order is served well within
	// the TTL.
	write(t, c1, websocket.MessageText, refreshAuth(6, refresh2))
	write(t, c1, websocket.MessageText, buy(7, "after-refresh"))
	wantCode(t, r1.nextJSON(t), 0)
	order := result(t, r1.nextJSON(t))["order"].(map[string]any)
	if order["label"] != "after-refresh" || srv.OrdersByLabel("after-refresh") != 1 {
		t.Fatalf("order %v", order)
	}
	if sc1.AuthCount() != 2 || strings.Join(sc1.AuthGrants(), ",") != "client_credentials,refresh_token" || srv.AuthCount() != 3 {
		t.Fatalf("AuthCount=%d grants=%v total=%d", sc1.AuthCount(), sc1.AuthGrants(), srv.AuthCount())
	}
}

func TestDeribitAuthWithoutCredentials(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithDeribitTokenTTL(2500*time.Millisecond))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)

	// Built-in order methods need auth even without credentials; the
	// subscription methods stay open.
	wantCode(t, rpc(t, c, r, buy(1, "")), wstest.CodeUnauthorized)
	wantCode(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":2,"method":"private/subscribe","params":{"channels":["user.trades.any.any.raw"]}}`), 0)

	res := result(t, rpc(t, c, r, credsAuth(3, "anyone", "anything")))
	if res["expires_in"] != float64(3) || res["access_token"] != "tok" {
		t.Fatalf("auth result %v", res)
	}
	wantCode(t, rpc(t, c, r, refreshAuth(4, "whatever")), 0)
	if !sc.Authenticated() || strings.Join(sc.AuthGrants(), ",") != "client_credentials,refresh_token" {
		t.Fatalf("Authenticated=%v grants=%v", sc.Authenticated(), sc.AuthGrants())
	}
	wantCode(t, rpc(t, c, r, buy(5, "x")), 0)
}

func TestDeribitOrders(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret))
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	wantCode(t, rpc(t, c, r, credsAuth(1, testClientID, testSecret)), 0)

	ids := map[string]bool{}
	for i, tc := range []struct{ req, direction, label string }{
		{buy(2, "a"), "buy", "a"},
		{buy(3, "a"), "buy", "a"},
		{`{"jsonrpc":"2.0","id":4,"method":"private/sell","params":{"instrument_name":"ETH-PERPETUAL","amount":1,"type":"market"}}`, "sell", ""},
	} {
		res := result(t, rpc(t, c, r, tc.req))
		order := res["order"].(map[string]any)
		id, _ := order["order_id"].(string)
		if id == "" || ids[id] || order["order_state"] != "open" || order["direction"] != tc.direction || order["label"] != tc.label {
			t.Fatalf("order %d: %v", i, res)
		}
		ids[id] = true
		if trades, ok := res["trades"].([]any); !ok || len(trades) != 0 {
			t.Fatalf("trades %v", res["trades"])
		}
	}
	wantCode(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":5,"method":"private/buy","params":{"instrument_name":"BTC-PERPETUAL"}}`), wstest.CodeInvalidParams)
	wantCode(t, rpc(t, c, r, `{"jsonrpc":"2.0","id":6,"method":"private/sell","params":{"amount":1}}`), wstest.CodeInvalidParams)
	if srv.Orders() != 3 || srv.OrdersByLabel("a") != 2 || srv.OrdersByLabel("") != 1 || srv.OrdersByLabel("b") != 0 {
		t.Fatalf("Orders=%d a=%d none=%d b=%d", srv.Orders(), srv.OrdersByLabel("a"), srv.OrdersByLabel(""), srv.OrdersByLabel("b"))
	}
}

// tooManyRequests checks that the reply is 10028 with the request's id and
// that the connection is then closed with TooManyRequestsReason.
func tooManyRequests(t *testing.T, c *websocket.Conn, r *clientReader, id int, method string) {
	t.Helper()
	got := r.nextMsg(t)
	want := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"error":{"code":10028,"message":"too_many_requests"}}`, id)
	if string(got.data) != want {
		t.Fatalf("%s: got %s, want %s", method, got.data, want)
	}
	err := waitClosed(t, r)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != wstest.TooManyRequestsReason {
		t.Fatalf("%s: close %v", method, err)
	}
}

func TestDeribitCreditsSharedAccount(t *testing.T) {
	// Three requests per pool; a refill of 1 credit a second is far too
	// slow to matter during the test.
	credits := wstest.DeribitCredits{Capacity: 3000, Refill: 1, Cost: 1000, MatchingRate: 1, MatchingBurst: 5}
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret), wstest.WithDeribitCredits(credits))
	defer srv.Close()
	c1 := dial(t, srv, "/", nil)
	r1 := startReader(t, c1)
	c2 := dial(t, srv, "/", nil)
	r2 := startReader(t, c2)
	c3 := dial(t, srv, "/", nil)
	r3 := startReader(t, c3)
	conns, err := srv.WaitConns(testCtx(t, 5*time.Second), 3)
	if err != nil {
		t.Fatal(err)
	}

	// Each auth is paid from the connection's own pool.
	wantCode(t, rpc(t, c1, r1, credsAuth(1, testClientID, testSecret)), 0)
	wantCode(t, rpc(t, c2, r2, credsAuth(1, testClientID, testSecret)), 0)

	// The account's pool is shared: c1 spends two requests (one a
	// notification without id), c2 the third, and c2's fourth is refused.
	write(t, c1, websocket.MessageText, `{"jsonrpc":"2.0","method":"public/test","params":{}}`)
	wantCode(t, rpc(t, c1, r1, req(2, "public/test")), 0)
	wantCode(t, rpc(t, c2, r2, req(2, "public/test")), 0)

	// c3 is unauthenticated and has a pool of its own.
	for i := range 3 {
		wantCode(t, rpc(t, c3, r3, req(i+1, "public/test")), 0)
	}

	write(t, c2, websocket.MessageText, req(99, "public/get_time"))
	tooManyRequests(t, c2, r2, 99, "c2")
	if code, reason := conns[1].CloseReason(); code != websocket.StatusPolicyViolation || reason != wstest.TooManyRequestsReason {
		t.Fatalf("CloseReason = %v %q", code, reason)
	}
	if srv.RateLimited() != 1 {
		t.Fatalf("RateLimited = %d", srv.RateLimited())
	}
	// The other connection of the account finds the pool empty too.
	write(t, c1, websocket.MessageText, req(3, "public/test"))
	tooManyRequests(t, c1, r1, 3, "c1")
	if srv.RateLimited() != 2 {
		t.Fatalf("RateLimited = %d", srv.RateLimited())
	}
	if err := srv.WaitConnCount(testCtx(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
}

func TestDeribitMatchingBucket(t *testing.T) {
	credits := wstest.DeribitCredits{Capacity: 3000, Refill: 1, Cost: 1000, MatchingRate: 0.001, MatchingBurst: 2}
	srv := wstest.NewServer(wstest.WithDeribitCredentials(testClientID, testSecret), wstest.WithDeribitCredits(credits))
	defer srv.Close()
	c1 := dial(t, srv, "/", nil)
	r1 := startReader(t, c1)
	wantCode(t, rpc(t, c1, r1, credsAuth(1, testClientID, testSecret)), 0)

	// Orders use the matching-engine bucket, not credits.
	wantCode(t, rpc(t, c1, r1, buy(2, "x")), 0)
	wantCode(t, rpc(t, c1, r1, buy(3, "x")), 0)
	wantCode(t, rpc(t, c1, r1, req(4, "public/test")), 0) // credits 3000 -> 2000
	write(t, c1, websocket.MessageText, buy(5, "x"))
	tooManyRequests(t, c1, r1, 5, "third buy")
	if srv.Orders() != 2 || srv.OrdersByLabel("x") != 2 {
		t.Fatalf("Orders = %d, refused order executed", srv.Orders())
	}

	// Other cancel_* methods are matching-engine requests too, and the
	// bucket belongs to the account, not the connection.
	c2 := dial(t, srv, "/", nil)
	r2 := startReader(t, c2)
	wantCode(t, rpc(t, c2, r2, credsAuth(1, testClientID, testSecret)), 0)
	write(t, c2, websocket.MessageText, req(2, "private/cancel_by_label"))
	tooManyRequests(t, c2, r2, 2, "cancel_by_label")

	// The refused requests cost no credits: two are left.
	c3 := dial(t, srv, "/", nil)
	r3 := startReader(t, c3)
	wantCode(t, rpc(t, c3, r3, credsAuth(1, testClientID, testSecret)), 0)
	wantCode(t, rpc(t, c3, r3, req(2, "public/test")), 0)
	wantCode(t, rpc(t, c3, r3, req(3, "private/get_account_summary")), 0)
	write(t, c3, websocket.MessageText, req(4, "public/test"))
	tooManyRequests(t, c3, r3, 4, "credits")
	if srv.RateLimited() != 3 {
		t.Fatalf("RateLimited = %d", srv.RateLimited())
	}
}

type tickNote struct {
	Method string `json:"method"`
	Params struct {
		Channel string `json:"channel"`
		Data    struct {
			ChannelSeq uint64 `json:"channel_seq"`
			Timestamp  int64  `json:"timestamp"`
		} `json:"data"`
	} `json:"params"`
}

func TestDeribitTicker(t *testing.T) {
	const ch = "ticker.BTC-PERPETUAL.100ms"
	srv := wstest.NewServer(wstest.WithDeribitTicker(10 * time.Millisecond))
	defer srv.Close()
	c1 := dial(t, srv, "/", nil)
	r1 := startReader(t, c1)
	c2 := dial(t, srv, "/", nil)
	r2 := startReader(t, c2)

	subscribe := func(c *websocket.Conn, r *clientReader, channels string) {
		write(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":`+channels+`}}`)
		for {
			if m := r.nextJSON(t); m["id"] == float64(1) {
				return
			}
		}
	}
	subscribe(c1, r1, `["`+ch+`","only.c1"]`)
	subscribe(c2, r2, `["`+ch+`"]`)
	// A tick that was under way while c2 subscribed may have skipped it;
	// every later one reaches both connections.
	from := srv.Published(ch) + 1

	const want = 5
	collect := func(r *clientReader, name string) map[uint64][]byte {
		got := map[uint64][]byte{}
		var last uint64
		for len(got) < want {
			msg := r.nextMsg(t)
			var n tickNote
			if err := json.Unmarshal(msg.data, &n); err != nil || n.Method != "subscription" {
				t.Fatalf("%s: unexpected %s", name, msg.data)
			}
			if n.Params.Channel != ch {
				if name != "c1" || n.Params.Channel != "only.c1" {
					t.Fatalf("%s: notification for %q", name, n.Params.Channel)
				}
				continue
			}
			seq := n.Params.Data.ChannelSeq
			if seq <= last || n.Params.Data.Timestamp <= 0 {
				t.Fatalf("%s: channel_seq %d after %d (timestamp %d)", name, seq, last, n.Params.Data.Timestamp)
			}
			last = seq
			if seq > from {
				if len(got) > 0 && got[seq-1] == nil {
					t.Fatalf("%s: gap before channel_seq %d", name, seq)
				}
				got[seq] = msg.data
			}
		}
		return got
	}
	got1, got2 := collect(r1, "c1"), collect(r2, "c2")
	for seq := from + 1; seq <= from+want; seq++ {
		if got1[seq] == nil || string(got1[seq]) != string(got2[seq]) {
			t.Fatalf("channel_seq %d differs:\n c1 %s\n c2 %s", seq, got1[seq], got2[seq])
		}
	}
	if srv.Published(ch) < from+want || srv.Published("only.c1") == 0 || srv.Published("never") != 0 {
		t.Fatalf("Published = %d / %d / %d", srv.Published(ch), srv.Published("only.c1"), srv.Published("never"))
	}
}

func TestMaxConnAge(t *testing.T) {
	const age = 150 * time.Millisecond
	srv := wstest.NewServer(wstest.WithMaxConnAge(age))
	defer srv.Close()
	start := time.Now()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)
	err := waitClosed(t, r)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != wstest.MaxConnAgeReason {
		t.Fatalf("close %v", err)
	}
	if d := time.Since(start); d < age {
		t.Fatalf("closed after %v, before the max age %v", d, age)
	}
	if code, reason := sc.CloseReason(); code != websocket.StatusGoingAway || reason != wstest.MaxConnAgeReason {
		t.Fatalf("CloseReason = %v %q", code, reason)
	}
	if err := srv.WaitConnCount(testCtx(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
}

func TestSendServerShutdown(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := dial(t, srv, "/", nil)
	r := startReader(t, c)
	sc := waitConn(t, srv)
	before := time.Now().UnixMilli()
	if err := sc.SendServerShutdown(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	got := r.nextMsg(t)
	var m struct {
		Event struct {
			E  string `json:"e"`
			TS int64  `json:"E"`
		} `json:"event"`
	}
	if got.typ != websocket.MessageText || json.Unmarshal(got.data, &m) != nil ||
		m.Event.E != "serverShutdown" || m.Event.TS < before || m.Event.TS > after {
		t.Fatalf("got %v %s", got.typ, got.data)
	}
	// The connection stays open.
	write(t, c, websocket.MessageText, "still here")
	if got := r.nextMsg(t); string(got.data) != "still here" {
		t.Fatalf("echo %q", got.data)
	}
}
