package review16b

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/transport/wstest"
)

// countingVenue answers private/buy and counts each order id.
type countingVenue struct {
	*wstest.Server
	mu     sync.Mutex
	orders map[string]int
}

func newCountingVenue(t *testing.T) *countingVenue {
	v := &countingVenue{orders: map[string]int{}}
	v.Server = wstest.NewServer(wstest.WithDeribit(),
		wstest.WithResponder("public/get_time", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			return time.Now().UnixMilli(), nil
		}),
		wstest.WithResponder("private/buy", func(_ *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
			var p struct{ ID string }
			_ = json.Unmarshal(params, &p)
			time.Sleep(2 * time.Millisecond) // an order in flight long enough to be caught by a kill
			v.mu.Lock()
			v.orders[p.ID]++
			v.mu.Unlock()
			return "filled", nil
		}))
	t.Cleanup(v.Close)
	return v
}

func (v *countingVenue) count(id string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.orders[id]
}
