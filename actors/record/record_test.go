package record_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors/record"
)

const sample = `{"t":"2026-11-22T00:00:00Z","dir":"out","data":"hello","gen":1}
{"t":"2026-11-22T00:00:01Z","dir":"in","data":"hello","gen":1}

{"t":"2026-11-22T00:00:02Z","dir":"gap","data":"","dropped":3}
{"t":"2026-11-22T00:00:03Z","dir":"in","bin":true,"data":"AAEC","gen":2}
`

func TestReplayAndSummarize(t *testing.T) {
	var recs []record.Record
	if err := record.Replay(strings.NewReader(sample), func(r record.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[0].Dir != record.DirOut || recs[1].Generation != 1 || recs[2].Dropped != 3 || !recs[3].Binary {
		t.Fatalf("records: %+v", recs)
	}
	sum, err := record.Summarize(strings.NewReader(sample))
	if err != nil || sum.Records != 4 || sum.In != 2 || sum.Out != 1 || sum.Gaps != 1 || sum.Dropped != 3 || sum.Duration() != 3*time.Second {
		t.Fatalf("Summarize = %+v, %v", sum, err)
	}
	for in, want := range map[string]string{
		"{\"dir\":\"in\"}\nnot json\n": "line 2",
		`{"dir":"sideways"}`:           `direction "sideways"`,
	} {
		if err := record.Replay(strings.NewReader(in), func(record.Record) error { return nil }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Replay(%q) = %v, want an error with %q", in, err, want)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := record.Replay(strings.NewReader(sample), func(record.Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn's error: %v after %d records", err, n)
	}
}

// FuzzReplay: no input may panic the JSONL reader.
func FuzzReplay(f *testing.F) {
	f.Add([]byte(`{"t":"2026-11-22T00:00:00Z","dir":"in","data":"x","gen":1}` + "\n"))
	f.Add([]byte("{\"dir\":\"out\",\"bin\":true,\"data\":\"AAE=\"}\n\n{}\n"))
	f.Add([]byte("\xff\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = record.Replay(bytes.NewReader(data), func(record.Record) error { return nil })
		_, _ = record.Summarize(bytes.NewReader(data))
	})
}

// Replay a recording, say one written by actors.WithRecordFile, and find the
// connection an order left on.
func ExampleReplay() {
	rec := `{"t":"2026-11-22T00:00:00Z","dir":"out","data":"{\"method\":\"private/buy\"}","gen":2}` + "\n"
	_ = record.Replay(strings.NewReader(rec), func(r record.Record) error {
		if r.Dir == record.DirOut && strings.Contains(r.Data, "private/buy") {
			fmt.Println("order left on connection", r.Generation)
		}
		return nil
	})
	// Output: order left on connection 2
}
