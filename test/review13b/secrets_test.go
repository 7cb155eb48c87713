package review13b

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
	"github.com/zenws/zenws/internal/testutil"
)

func secretsList() map[string]string {
	return map[string]string{
		"secret":     secretKey,
		"passphrase": passphrase,
		"apikey":     apiKey,
		"sign":       okx.Sign(secretKey, "1700000000"),
		"sign.000":   okx.Sign(secretKey, "1700000000.000"),
	}
}

func checkLeaks(t *testing.T, where, text string) {
	t.Helper()
	for name, s := range secretsList() {
		for _, form := range []string{s, strings.Trim(fmt.Sprintf("%q", s), `"`), jsonEsc(s)} {
			if strings.Contains(text, form) {
				t.Errorf("%s leaks the %s (%q)", where, name, form)
				break
			}
		}
	}
}

func jsonEsc(s string) string { b, _ := json.Marshal(s); return strings.Trim(string(b), `"`) }

// A venue that echoes the credentials in its refusals (a retryable one,
// then an answer to a subscribe) and a connection that is dropped: nothing
// may show them.
func TestSecretsEverywhere(t *testing.T) {
	echo := func() string {
		// JSON-escaped sign (base64 has + and /)
		return jsonEsc(fmt.Sprintf("apiKey=%s passphrase=%s secret %s sign %s raw %s", apiKey, passphrase, secretKey, okx.Sign(secretKey, "1700000000"), apiKey+passphrase))
	}
	first := true
	pe := newPeer(t, func(p *pconn, raw []byte, r req) bool {
		switch r.Op {
		case "login":
			if first {
				first = false
				_ = p.write(`{` + idField(r) + `"event":"error","code":"60006","msg":"` + echo() + `","echo":` + string(raw) + `}`)
				return true
			}
		case "subscribe":
			_ = p.write(`{` + idField(r) + `"event":"error","code":"60018","msg":"` + echo() + `","arg":` + string(r.Args[0]) + `}`)
			return true
		}
		return false
	})
	obs, logs := observer.New(zap.DebugLevel)
	var rec testutil.SyncBuffer
	var changes []string
	c, err := connect(t, pe.URL, actors.WithVenue(creds(t)), actors.WithLogger(zap.New(obs)),
		actors.WithRecorder(&rec), actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(20*time.Millisecond),
		actors.WithStateObserver(func(sc actors.StateChange) { changes = append(changes, fmt.Sprintf("%+v", sc)) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	serr := c.Subscribe(ctx, "tickers:BTC-USDT")
	checkLeaks(t, "Subscribe's error", fmt.Sprintf("%v %+v %#v", serr, serr, serr))
	h := c.Health()
	checkLeaks(t, "Health", fmt.Sprintf("%+v %#v", h, h))
	for _, ch := range h.Channels {
		if ch.Err != nil {
			checkLeaks(t, "Health channel Err", ch.Err.Error())
		}
	}
	if h.LastError != nil {
		checkLeaks(t, "Health.LastError", h.LastError.Error())
	}
	_ = c.Close()
	time.Sleep(100 * time.Millisecond)
	var all strings.Builder
	for _, e := range logs.All() {
		all.WriteString(e.Message)
		b, _ := json.Marshal(e.ContextMap())
		all.Write(b)
		all.WriteString(fmt.Sprint(e.ContextMap()))
	}
	checkLeaks(t, "logs", all.String())
	checkLeaks(t, "recording", rec.String())
	checkLeaks(t, "state changes", strings.Join(changes, "\n"))
	t.Logf("logins=%d; %d log lines; recording %d bytes:\n%s", pe.logins.Load(), len(logs.All()), len(rec.String()), rec.String())
}
