package venue_test

import (
	"strings"
	"testing"

	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/actors/venue/deribit"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, channel string
		want             bool
	}{
		{"book.*", "book.BTC-PERPETUAL.100ms", true},
		{"book.*", "book.", true},
		{"book.*", "book", false},
		{"book.*", "trades.BTC-PERPETUAL.raw", false},
		{"*@depth*", "btcusdt@depth@100ms", true},
		{"*@depth*", "btcusdt@trade", false},
		{"ticker", "ticker", true},
		{"ticker", "tickers", false},
		{"*", "", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"", "", true},
		{"", "x", false},
	} {
		if got := venue.Match(c.pattern, c.channel); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.channel, got, c.want)
		}
	}
	// Many stars against a long name that misses: bounded by the lengths'
	// product, not exponential.
	if venue.Match(strings.Repeat("*a", 40)+"b", strings.Repeat("a", 1024)) {
		t.Fatal("matched a name without a b")
	}
}

func TestSeqFollows(t *testing.T) {
	for _, c := range []struct {
		s    venue.Seq
		last uint64
		want bool
	}{
		{venue.Seq{First: 11, Last: 15}, 10, true},
		{venue.Seq{First: 9, Last: 15}, 10, true}, // overlaps: Binance's first update after a snapshot
		{venue.Seq{First: 12, Last: 15}, 10, false},
		{venue.Seq{First: 5, Last: 10}, 10, false}, // old
		{venue.Seq{First: 20, Last: 20, Prev: 10, HasPrev: true}, 10, true},
		{venue.Seq{First: 20, Last: 20, Prev: 9, HasPrev: true}, 10, false},
		{venue.Seq{First: 3, Last: 3, Snapshot: true}, 10, true},
	} {
		if got := c.s.Follows(c.last); got != c.want {
			t.Errorf("%+v.Follows(%d) = %v, want %v", c.s, c.last, got, c.want)
		}
	}
}

func TestDeribitSequence(t *testing.T) {
	v := deribit.Venue{}
	frame := func(ch, data string) []byte {
		return []byte(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"` + ch + `","data":` + data + `}}`)
	}
	ch := "book.BTC-PERPETUAL.100ms"
	s, ok := v.Sequence(ch, frame(ch, `{"type":"snapshot","change_id":7,"bids":[],"asks":[]}`))
	if !ok || !s.Snapshot || s.Last != 7 {
		t.Fatalf("snapshot: %+v %v", s, ok)
	}
	s, ok = v.Sequence(ch, frame(ch, `{"type":"change","change_id":9,"prev_change_id":7}`))
	if !ok || s.Snapshot || !s.HasPrev || s.Prev != 7 || !s.Follows(7) || s.Follows(8) {
		t.Fatalf("change: %+v %v", s, ok)
	}
	grouped := "book.BTC-PERPETUAL.none.10.100ms"
	if s, ok = v.Sequence(grouped, frame(grouped, `{"change_id":12,"bids":[]}`)); !ok || !s.Snapshot {
		t.Fatalf("grouped book: %+v %v", s, ok)
	}
	for _, bad := range []string{`{"change_id":-1}`, `{"change_id":"7"}`, `{}`, `[]`, `{"change_id":1e3}`} {
		if s, ok := v.Sequence(ch, frame(ch, bad)); ok {
			t.Errorf("%s read as %+v", bad, s)
		}
	}
	if _, ok := v.Sequence("trades.BTC-PERPETUAL.raw", frame("trades.BTC-PERPETUAL.raw", `{"change_id":1}`)); ok {
		t.Error("a trades channel read as sequenced")
	}
	if s.Resync != venue.ResyncResubscribe {
		t.Error("Deribit books resync by resubscribing")
	}
}

func TestBinanceSequence(t *testing.T) {
	v := binance.Venue{}
	frame := func(ch, data string) []byte { return []byte(`{"stream":"` + ch + `","data":` + data + `}`) }
	s, ok := v.Sequence("btcusdt@depth@100ms", frame("btcusdt@depth@100ms", `{"e":"depthUpdate","U":157,"u":160,"b":[],"a":[]}`))
	if !ok || s.First != 157 || s.Last != 160 || s.HasPrev || !s.Follows(156) || s.Follows(155) {
		t.Fatalf("spot diff depth: %+v %v", s, ok)
	}
	s, ok = v.Sequence("btcusdt@depth", frame("btcusdt@depth", `{"e":"depthUpdate","U":157,"u":160,"pu":149}`))
	if !ok || !s.HasPrev || s.Prev != 149 || !s.Follows(149) {
		t.Fatalf("futures diff depth: %+v %v", s, ok)
	}
	if _, ok := v.Sequence("btcusdt@depth", frame("btcusdt@depth", `{"U":160,"u":157}`)); ok {
		t.Error("u < U read as a range")
	}
	s, ok = v.Sequence("btcusdt@depth5@100ms", frame("btcusdt@depth5@100ms", `{"lastUpdateId":160,"bids":[],"asks":[]}`))
	if !ok || !s.Snapshot || s.Last != 160 {
		t.Fatalf("partial depth: %+v %v", s, ok)
	}
	if _, ok := v.Sequence("btcusdt@trade", frame("btcusdt@trade", `{"U":1,"u":2}`)); ok {
		t.Error("a trade stream read as sequenced")
	}
	if s.Resync != venue.ResyncRestart {
		t.Error("a partial book needs no resync")
	}
	if s, _ := v.Sequence("btcusdt@depth", frame("btcusdt@depth", `{"U":1,"u":2}`)); s.Resync != venue.ResyncSnapshot {
		t.Error("a diff depth stream resyncs from a snapshot")
	}
}

func TestSequenceField(t *testing.T) {
	f := venue.SequenceField{Pattern: "trades.*", Path: []string{"params", "data", "seq"}, Snapshot: []string{"params", "data", "type"}}
	s, ok := f.Sequence("trades.X", []byte(`{"params":{"data":{"seq":5,"type":"snapshot"}}}`))
	if !ok || !s.Snapshot || s.First != 5 || s.Last != 5 || s.Resync != venue.ResyncResubscribe {
		t.Fatalf("%+v %v", s, ok)
	}
	plain := venue.SequenceField{Pattern: "*", Path: []string{"seq"}}
	if s, ok := plain.Sequence("x", []byte(`{"seq":9}`)); !ok || s.Resync != venue.ResyncRestart || s.Snapshot {
		t.Fatalf("without snapshots: %+v %v", s, ok)
	}
	if _, ok := f.Sequence("book.X", []byte(`{"params":{"data":{"seq":5}}}`)); ok {
		t.Fatal("matched another channel")
	}
	both := venue.Sequencers{f, deribit.Venue{}}
	if s, ok := both.Sequence("book.X", []byte(`{"params":{"data":{"change_id":3,"prev_change_id":2}}}`)); !ok || s.Prev != 2 {
		t.Fatalf("Sequencers: %+v %v", s, ok)
	}
}
