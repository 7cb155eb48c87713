package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The gaps of issue 12 item 3: each frame hides its secret, keeps its
// other bytes, and stays valid JSON.
func TestFrameHidesEveryIssueCase(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 200) + `{"client_secret":"DEEP-SECRET"}` + strings.Repeat(`}`, 200)
	cases := []struct {
		name, in, secret, keep string
	}{
		{"deep nesting", deep, "DEEP-SECRET", `{"a":{"a":`},
		{"escaped member name", `{"params":{"client\u005fsecret":"ESC-SECRET","client_id":"me"}}`, "ESC-SECRET", `"client_id":"me"`},
		{"OKX passphrase and sign", `{"op":"login","args":[{"apiKey":"OKX-KEY-1","passphrase":"OKX-PASS","timestamp":"1538054050","sign":"OKX-SIGN"}]}`, "OKX-PASS", `"timestamp":`},
		{"OKX sign", `{"op":"login","args":[{"apiKey":"k","passphrase":"p","timestamp":"1538054050","sign":"OKX-SIGN"}]}`, "OKX-SIGN", `"op":"login"`},
		{"Bybit positional args", `{"op":"auth","args":["BYBIT-KEY",1662350400000,"BYBIT-SIGNATURE"]}`, "BYBIT-SIGNATURE", `1662350400000`},
		{"Bybit positional key", `{"args":["BYBIT-KEY",1662350400000,"BYBIT-SIGNATURE"],"op":"auth"}`, "BYBIT-KEY", `"op":"auth"`},
		{"Authorization member", `{"headers":{"Authorization":"Bearer AUTH-TOKEN"}}`, "AUTH-TOKEN", `"headers":`},
		{"trailing data kept", `{"client_secret":"TRAIL-SECRET"} {"next":1}`, "TRAIL-SECRET", ` {"next":1}`},
		{"secret object value", `{"auth":{"user":"u","pass":"OBJ-SECRET"},"x":[1,2]}`, "OBJ-SECRET", `"x":[1,2]`},
		{"api-key spellings", `{"api-key":"K1-SECRET","apiKey":"K2-SECRET","API_KEY":"K3-SECRET"}`, "K2-SECRET", `"api-key":`},
		{"escaped value", `{"token":"\u0054OKEN-SECRET"}`, "OKEN-SECRET", `"token":`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := JSON([]byte(c.in))
			if bytes.Contains(out, []byte(c.secret)) {
				t.Fatalf("secret kept: %s", out)
			}
			if !bytes.Contains(out, []byte(c.keep)) || !bytes.Contains(out, []byte(Mask)) {
				t.Fatalf("frame not preserved around the mask: %s", out)
			}
			dec := json.NewDecoder(bytes.NewReader(out))
			for dec.More() {
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatalf("output is not JSON (%v): %s", err, out)
				}
			}
		})
	}
}

func TestFrameKeepsCleanFramesByteForByte(t *testing.T) {
	for _, in := range []string{
		`{"b":1,"a":2,   "c":[true,false,null,-1.5e3]}`,
		`{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"x":"\u00e9"}}}`,
		`[1,"two",{"three":3}]`,
		"hello",
		"",
	} {
		if out := JSON([]byte(in)); string(out) != in {
			t.Fatalf("JSON(%s) = %s", in, out)
		}
	}
}

func TestFrameReplacesWhatItCannotVerify(t *testing.T) {
	for _, c := range []struct{ in, reason string }{
		{strings.Repeat("[", 100000), ReasonTooDeep},
		{strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000), ReasonTooDeep},
		{`{"client_secret":"TRUNC`, ReasonNotJSON},
		// The old redactor returned a frame deeper than encoding/json's
		// 10,000 limit raw, secret and all.
		{strings.Repeat(`{"a":`, 20000) + `{"client_secret":"x"}` + strings.Repeat("}", 20000), ReasonTooDeep},
		{`{"client_secret":"x"} garbage`, ReasonNotJSON},
		{`["a",]`, ReasonNotJSON},
	} {
		start := time.Now()
		out := JSON([]byte(c.in))
		if !bytes.HasPrefix(out, []byte(`{"redacted":"unverifiable","reason":"`+c.reason+`"`)) {
			t.Fatalf("JSON(%.40s...) = %.200s, want a %q placeholder", c.in, out, c.reason)
		}
		if !json.Valid(out) {
			t.Fatalf("placeholder is not JSON: %s", out)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	}
	big := make([]byte, MaxFrame+1)
	if out := JSON(big); !bytes.Contains(out, []byte(ReasonTooLarge)) {
		t.Fatalf("a frame over MaxFrame: %.100s", out)
	}
}

func TestFramePlainText(t *testing.T) {
	s := NewScrubber()
	s.Add("KNOWN-SECRET-1")
	for _, c := range []struct{ in, secret string }{
		{"auth KNOWN-SECRET-1 now", "KNOWN-SECRET-1"},
		{"login client_secret=PLAIN-SECRET&id=1", "PLAIN-SECRET"},
		{"Authorization: Bearer BEARER-SECRET", "BEARER-SECRET"},
		{"token: TOK-SECRET", "TOK-SECRET"},
		{"listen 0123456789abcdefABCDEF0123456789", "0123456789abcdefABCDEF0123456789"},
	} {
		out := s.Frame([]byte(c.in))
		if bytes.Contains(out, []byte(c.secret)) {
			t.Fatalf("Frame(%q) = %q", c.in, out)
		}
	}
	if out := s.Frame([]byte("ping")); string(out) != "ping" {
		t.Fatalf("plain text without secrets changed: %q", out)
	}
	// A known secret inside a JSON string, a number and a member name.
	s.Add("987654321")
	in := `{"note":"has KNOWN-SECRET-1 inside","n":987654321,"KNOWN-SECRET-1":1}`
	out := s.Frame([]byte(in))
	if bytes.Contains(out, []byte("KNOWN-SECRET-1")) || bytes.Contains(out, []byte("987654321")) || !json.Valid(out) {
		t.Fatalf("Frame = %s", out)
	}
}

func TestURLHidesSecretPathSegments(t *testing.T) {
	key := "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
	for _, c := range []struct{ in, want string }{
		{"wss://stream.binance.com:9443/ws/" + key, "wss://stream.binance.com:9443/ws/REDACTED"},
		{"wss://stream.binance.com:9443/stream?listenKey=" + key + "&streams=btcusdt@trade", "wss://stream.binance.com:9443/stream?listenKey=REDACTED&streams=REDACTED"},
		{"wss://stream.binance.com:9443/ws/btcusdt@depth20@100ms", "wss://stream.binance.com:9443/ws/btcusdt@depth20@100ms"},
		{"wss://www.deribit.com/ws/api/v2", "wss://www.deribit.com/ws/api/v2"},
		{"ws://u:p@h/x#frag", "ws://REDACTED@h/x#REDACTED"},
		{"ws://h/x?" + key, "ws://h/x?REDACTED"},
	} {
		if got := URL(c.in); got != c.want {
			t.Fatalf("URL(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestScrubberByValue(t *testing.T) {
	key := "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9"
	s := NewScrubber()
	s.AddURL("wss://USERNAME:PASSWORD1@venue.example/ws/" + key + "?signature=SIGVALUE1&depth=10")
	s.AddHeaders(http.Header{"X-Api-Key": {"HEADERKEY1"}, "Authorization": {"Bearer BEARERTOK1"}, "User-Agent": {"zenws/1.0"}})
	s.Add("short") // ignored: too short
	text := `Get "http://USERNAME@venue.example/ws/` + key + `?signature=SIGVALUE1&depth=10": dial: HEADERKEY1 BEARERTOK1 zenws/1.0 depth short`
	got := s.String(text)
	for _, secret := range []string{"USERNAME", key, "SIGVALUE1", "HEADERKEY1", "BEARERTOK1", "depth=10"} {
		if strings.Contains(got, secret) {
			t.Fatalf("String kept %q: %s", secret, got)
		}
	}
	if !strings.Contains(got, "zenws/1.0 depth short") {
		t.Fatalf("String mangled text that holds no secret: %s", got)
	}
	cause := errors.New("cause")
	err := s.Error(fmt.Errorf("dial PASSWORD1: %w", cause))
	if strings.Contains(err.Error(), "PASSWORD1") || !errors.Is(err, cause) {
		t.Fatalf("Error = %v", err)
	}
	if clean := errors.New("clean"); s.Error(clean) != clean {
		t.Fatal("a clean error was wrapped")
	}
}

func TestCoreScrubsMessagesAndFields(t *testing.T) {
	s := NewScrubber()
	s.Add("LOGSECRET1")
	obs, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(obs).WithOptions(zap.WrapCore(s.Core)).With(zap.String("url", "ws://h/?k=LOGSECRET1"))
	log.Debug("message LOGSECRET1",
		zap.Error(errors.New("err LOGSECRET1")),
		zap.Strings("list", []string{"LOGSECRET1"}),
		zap.Stringer("st", stringer("LOGSECRET1")),
		zap.ByteString("b", []byte("LOGSECRET1")),
		zap.Any("any", map[string]string{"a": "LOGSECRET1"}))
	if logs.Len() != 1 {
		t.Fatalf("%d entries", logs.Len())
	}
	e := logs.All()[0]
	dump := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
	if strings.Contains(dump, "LOGSECRET1") {
		t.Fatalf("a log line kept the secret: %s", dump)
	}
	if !strings.Contains(dump, "message REDACTED") {
		t.Fatalf("entry: %s", dump)
	}
	log.Info("plain", zap.Int("n", 1))
	if logs.Len() != 2 || logs.All()[1].ContextMap()["n"] != int64(1) {
		t.Fatalf("a plain entry changed: %v", logs.All())
	}
	// The wrapped core's level still decides.
	obsInfo, infoLogs := observer.New(zapcore.InfoLevel)
	zap.New(obsInfo).WithOptions(zap.WrapCore(s.Core)).Debug("hidden")
	if infoLogs.Len() != 0 {
		t.Fatal("a debug line passed an info core")
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// FuzzRedactJSON: for any frame and any registered secret, the output never
// holds the secret, valid JSON stays valid JSON, and a secret planted under
// a secret-named member of a valid frame never survives.
func FuzzRedactJSON(f *testing.F) {
	for _, seed := range []struct{ data, secret string }{
		{`{"jsonrpc":"2.0","id":1,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":"id","client_secret":"S3CRET77"}}`, "S3CRET77"},
		{`{"op":"auth","args":["key123456",1662350400000,"sig123456"]}`, "sig123456"},
		{`{"client\u005fsecret":"escaped1"}`, "escaped1"},
		{`[{"a":[{"b":{"token":"tok123456"}}]}] {"x":1}`, "zzzzzzzz"},
		{`plain text secret=abcdef1234`, "abcdef1234"},
		{`{"note":"\u0073ecret-value"}`, "secret-value"},
		{`{"n":12345678}`, "12345678"},
		{`[[[[[[[[`, "abcdefgh"},
		{"", "abcdefgh"},
	} {
		f.Add([]byte(seed.data), seed.secret)
	}
	f.Fuzz(func(t *testing.T, data []byte, secret string) {
		s := NewScrubber()
		s.Add(secret)
		out := s.Frame(data)
		for _, v := range s.known() {
			if bytes.Contains(out, []byte(v)) && !strings.Contains(string(Placeholder(ReasonSecretStays, len(data)))+Mask, v) {
				t.Fatalf("secret %q survived: %q -> %q", v, data, out)
			}
		}
		if json.Valid(data) && !json.Valid(out) {
			t.Fatalf("valid JSON in, invalid out: %q -> %q", data, out)
		}
		if !json.Valid(data) {
			return
		}
		planted := "P1anted" + fmt.Sprintf("%x", len(data)) + "Zq"
		if bytes.Contains(data, []byte(planted)) {
			return
		}
		frame := []byte(`{"x":` + string(data) + `,"client_secret":"` + planted + `"}`)
		if got := JSON(frame); bytes.Contains(got, []byte(planted)) || !json.Valid(got) {
			t.Fatalf("planted secret: %q -> %q", frame, got)
		}
	})
}

// A hostile plain-text frame of many secret-looking words, or many URLs,
// costs linear time (a quadratic pass would not finish 1 MiB in the test's time).
func TestTextIsLinear(t *testing.T) {
	word := "abcdefghij0123456789xyz "
	in := strings.Repeat(word, (1<<20)/len(word))
	out := JSON([]byte(in))
	if bytes.Contains(out, []byte("abcdefghij0123456789xyz")) || !bytes.Contains(out, []byte(Mask+" "+Mask)) {
		t.Fatalf("words not masked: %.100s", out)
	}
	urls := strings.Repeat("ws://h/x?k=v ", (1<<20)/13)
	if out := JSON([]byte(urls)); bytes.Contains(out, []byte("k=v ")) {
		t.Fatalf("query values kept: %.100s", out)
	}
}

// Tokens registered on every refresh do not grow the scrubber without
// bound; the sealed configuration secrets stay.
func TestScrubberForgetsOldTokensOnly(t *testing.T) {
	s := NewScrubber()
	s.Add("CONFIG-SECRET-1")
	s.Seal()
	for i := 0; i < 1000; i++ {
		s.Add(fmt.Sprintf("token-%06d", i))
	}
	if n := len(s.known()); n > MaxRecent+5 {
		t.Fatalf("%d forms kept", n)
	}
	got := s.String("CONFIG-SECRET-1 token-000999 token-000000")
	if got != "REDACTED REDACTED token-000000" {
		t.Fatalf("String = %q", got)
	}
}
