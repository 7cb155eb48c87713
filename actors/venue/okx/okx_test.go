package okx_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/okx"
)

func TestSignIsOKXs(t *testing.T) {
	// base64(HMAC-SHA256("secret", "1538054050GET/users/self/verify")), computed independently
	// with: printf '1538054050GET/users/self/verify' | openssl dgst -sha256 -hmac secret -binary | base64
	const want = "Gj2hQIVKFcXbiwCak8SmVOu5mxPCizWDdmUAhbx8Z+s="
	if got := okx.Sign("secret", "1538054050"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestDialectOneChannelPerRequest(t *testing.T) {
	d := okx.Dialect{}
	reqs := d.Requests(venue.OpSubscribe, []string{"tickers:BTC-USDT", "account"})
	if len(reqs) != 2 || reqs[0].Method != "subscribe" || !slices.Equal(reqs[1].Channels, []string{"account"}) {
		t.Fatalf("Requests = %+v", reqs)
	}
	b, err := d.Encode(reqs[0], 17)
	if err != nil || string(b) != `{"id":"17","op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}` {
		t.Fatalf("Encode = %s, %v", b, err)
	}
	if _, err := d.Encode(venue.SubscriptionRequest{Op: venue.OpSubscribe, Channels: []string{":x"}}, 1); err == nil {
		t.Fatal("a channel without a name encoded")
	}
	got, err := d.Confirmed(reqs[0], json.RawMessage(`{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}`))
	if err != nil || !slices.Equal(got, []string{"tickers:BTC-USDT"}) {
		t.Fatalf("Confirmed = %v, %v", got, err)
	}
}

func TestCorrelateAndClassify(t *testing.T) {
	v, err := okx.New(okx.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := v.Correlate([]byte(`{"id":"17","event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"a"}`))
	if !ok || string(r.ID) != `"17"` || r.Err != nil || !strings.Contains(string(r.Result), `"event":"subscribe"`) {
		t.Fatalf("subscribe event: %+v %v", r, ok)
	}
	sub := venue.SubscriptionRequest{Op: venue.OpSubscribe, Method: "subscribe", Channels: []string{"tickers:BTC-USDT"}}
	if got, err := (okx.Dialect{}).Confirmed(sub, r.Result); err != nil || !slices.Equal(got, []string{"tickers:BTC-USDT"}) {
		t.Fatalf("Confirmed(subscribe event) = %v, %v", got, err)
	}
	unsub, _ := v.Correlate([]byte(`{"id":"19","event":"unsubscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}`))
	if _, err := (okx.Dialect{}).Confirmed(sub, unsub.Result); err == nil {
		t.Fatal("an unsubscribe event confirmed a subscribe")
	}
	for _, login := range []string{`{"id":"20","event":"login","code":"60009","msg":"Login failed."}`, `{"id":"21","event":"login","code":60009}`} {
		if r, ok := v.Correlate([]byte(login)); !ok || r.Err == nil || r.Err.Code != 60009 {
			t.Fatalf("a refused login %s correlated as %+v", login, r)
		}
	}
	r, ok = v.Correlate([]byte(`{"id":"18","event":"error","code":"60018","msg":"doesn't exist","connId":"a"}`))
	if !ok || r.Err == nil || r.Err.Code != 60018 || r.Err.Message != "doesn't exist" {
		t.Fatalf("error event: %+v", r)
	}
	r, ok = v.Correlate([]byte(`{"id":"ord1","op":"order","code":"1","msg":"","data":[{"sCode":"51008"}]}`))
	if !ok || r.Err == nil || r.Err.Code != 1 {
		t.Fatalf("failed order: %+v", r)
	}
	if _, ok := v.Correlate([]byte(`{"event":"subscribe","arg":{"channel":"tickers"}}`)); ok {
		t.Fatal("an event without an id correlated")
	}
	// An error without an id answers the login (when one is in flight:
	// the pending table decides), whatever its code.
	for _, code := range []string{"60009", "60012", "50101"} {
		if r, ok := v.Correlate([]byte(`{"event":"error","code":"` + code + `","msg":"m","connId":"a"}`)); !ok || string(r.ID) != `"login"` || r.Err == nil {
			t.Fatalf("an id-less refusal %s correlated as %+v, %v", code, r, ok)
		}
	}
	if c := v.Classify([]byte(`{"arg":{"channel":"books5","instId":"ETH-USDT"},"data":[{}]}`)); c.Channel != "books5:ETH-USDT" {
		t.Fatalf("push classified as %+v", c)
	}
	if c := v.Classify([]byte(`{"event":"subscribe","arg":{"channel":"x"}}`)); c.Channel != "" {
		t.Fatalf("an event classified as a push: %+v", c)
	}
	if _, err := okx.New(okx.Config{APIKey: "k"}); err == nil {
		t.Fatal("partial credentials accepted")
	}
	var pe *venue.PermanentError
	if errors.As(venue.Permanent(errors.New("x")), &pe) != true {
		t.Fatal("Permanent does not match PermanentError")
	}
}
