package reviewfailover

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/balancer"
)

// review2 guard: what the balancer's rule sees of a message's method
// (Peek, then Members == 1 for "method") against what a venue decoding it
// with Go's encoding/json (a struct, or a map) reads. Hostile keys:
// escapes, other cases, the Kelvin sign and long s (which Go's folding
// takes for k and s), surrogates, invalid escapes, NUL, deep nesting. Any
// message the rule takes as retry-safe must be read by both decoders as
// the same public method; and nothing panics.
func TestReview2GuardPeekMembersAgreeWithEncodingJSON(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObj := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	msgs := []string{
		`{"method":"public/get_time","ME\u0054HOD":"private/buy"}`,
		`{"method":"public/get_time","\u006dethod":"private/buy"}`,
		`{"method":"public/get_time","\u006Dethod":"private/buy"}`,
		`{"method":"public/get_time","METHOD":"private/buy"}`,
		`{"method":"public/get_time","meth\u006fd":"private/buy"}`,
		`{"method":"public/get_time","method\u0000":"private/buy"}`,
		`{"method":"public/get_time","\ud800method":"private/buy"}`,
		`{"method":"public/get_time","method\udc00":"private/buy"}`,
		`{"method":"public/get_time","meth\od":"private/buy"}`,
		`{"method":"public/get_time","me\u0074hod\u":"private/buy"}`,
		"{\"method\":\"public/get_time\",\"method\xff\":\"private/buy\"}",
		"{\"method\":\"public/get_time\",\"\xefmethod\":\"private/buy\"}",
		`{"method":"public/get_time","params":{"method":"private/buy"}}`,
		`{"method":"public/get_time","params":{"\u212a":1,"paramſ":2},"ıd":3}`,
		`{"method":"public/get_time","params":` + deep + `}`,
		`{"method":"public/get_time","params":` + deepObj + `}`,
		`{"method":"public/get_time"} {"method":"private/buy"}`,
		`{"method":"public/get_time","method":"private/buy"}`,
		`{"method":"private/buy","method":"public/get_time"}`,
		`{"method":"public\/get_time"}`,
		`{"method":"public/get_time\u0000private/buy"}`,
		`{"method":"public/get_time"`,
		`{"method":"public/get_time",}`,
		"\xef\xbb\xbf{\"method\":\"private/buy\"}",
		`{"method":"public/get_time","x":"\"method\":\"private/buy\""}`,
		`{"method":"public/get_time","x":"\\","method":"private/buy"}`,
		`{"method":"public/get_time","x":"\\\"","method":"private/buy"}`,
	}
	for _, m := range msgs {
		method := ""
		env, ok := jsonrpc.Peek([]byte(m))
		if ok {
			method, _ = jsonrpc.String(env.Method)
		}
		safe := method != "" && balancer.PublicMethods(method) && jsonrpc.Members([]byte(m), "method") == 1
		if !safe {
			continue
		}
		var st struct {
			Method string `json:"method"`
		}
		if err := json.Unmarshal([]byte(m), &st); err == nil && st.Method != method {
			t.Errorf("%.80q: the rule saw %q (retry-safe), encoding/json's struct reads %q", m, method, st.Method)
		}
		var mp map[string]any
		if err := json.Unmarshal([]byte(m), &mp); err == nil {
			if s, _ := mp["method"].(string); s != method {
				t.Errorf("%.80q: the rule saw %q (retry-safe), encoding/json's map reads %q", m, method, s)
			}
		}
	}
}
