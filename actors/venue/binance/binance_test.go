package binance_test

import (
	"testing"

	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/binance"
)

// Binance declares its per-connection stream limit.
func TestMaxStreams(t *testing.T) {
	var v venue.Venue = binance.Venue{}
	l, ok := v.(venue.StreamLimited)
	if !ok || l.MaxStreams() != 1024 {
		t.Fatalf("binance.Venue as StreamLimited: %v %v", ok, l)
	}
}
