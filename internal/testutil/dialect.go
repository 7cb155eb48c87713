package testutil

import (
	"sync/atomic"

	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
)

// PanickyDialect is Deribit's dialect that panics in Requests ("dialect
// bug") once Armed is true: user code failing inside a restore or a
// Subscribe.
type PanickyDialect struct {
	deribit.Dialect
	Armed *atomic.Bool
}

// Requests panics when armed, else builds Deribit's requests.
func (p PanickyDialect) Requests(op venue.SubscriptionOp, chs []string) []venue.SubscriptionRequest {
	if p.Armed.Load() {
		panic("dialect bug")
	}
	return p.Dialect.Requests(op, chs)
}
