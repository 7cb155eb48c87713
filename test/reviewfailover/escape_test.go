package reviewfailover

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/testutil"
)

// Finding 6. Request decides retry-safety from the message's "method" as
// jsonrpc.Peek reads it, comparing keys byte for byte. A key spelled with a
// JSON escape ("\u006dethod") is the same key "method" to any conformant
// parser (encoding/json here, as the venue), and the last duplicate wins
// for both: the balancer sees public/get_time (retry-safe by the default
// rule), the venue executes private/buy. After a TCP reset the order is
// tried again on every client: executed three times.
func TestFinding6EscapedMethodKeyOrderRetried(t *testing.T) {
	v := &venue{behave: resetOnFrame}
	p := newPool(t, 3, v, nil)
	msg := []byte(`{"jsonrpc":"2.0","id":9,"method":"public/get_time","\u006dethod":"private/buy","params":{"instrument_name":"BTC-PERPETUAL","amount":10,"label":"esc-1"}}`)
	_, err := p.b.Request(testutil.Context(t, 10*time.Second), msg)
	noSecret(t, err)
	orders := 0
	v.mu.Lock()
	for _, f := range v.frames {
		var req struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(f.data, &req) == nil && req.Method == "private/buy" {
			orders++
		}
	}
	v.mu.Unlock()
	if orders > 1 {
		t.Errorf("the venue executed private/buy %d times (err %v): the balancer took it for public/get_time and failed it over", orders, err)
	}
}
