package testutil

import (
	"sync/atomic"

	"github.com/zenws/zenws/actors"
)

// PanickyDialect is Deribit's dialect that panics in Requests ("dialect
// bug") once Armed is true: user code failing inside a restore or a
// Subscribe.
type PanickyDialect struct {
	actors.DeribitDialect
	Armed *atomic.Bool
}

// Requests panics when armed, else builds Deribit's requests.
func (p PanickyDialect) Requests(op actors.SubscriptionOp, chs []string) []actors.SubscriptionRequest {
	if p.Armed.Load() {
		panic("dialect bug")
	}
	return p.DeribitDialect.Requests(op, chs)
}
