package actors_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/transport/wstest"
)

// fieldsVenue is a venue of the user's own whose messages carry a secret
// under a name no generic rule knows.
type fieldsVenue struct {
	fields []string
	panics bool
}

func (fieldsVenue) Name() string           { return "fields" }
func (fieldsVenue) Dialect() venue.Dialect { return deribit.Dialect{} }
func (v fieldsVenue) SecretFields() []string {
	if v.panics {
		panic("SecretFields exploded with hmacBlob=LEAK")
	}
	return v.fields
}

// A venue.Redactor's field names are masked in the recording (both ways:
// the frame the client sent and the venue's echo), in any spelling; a
// client without that venue records them (the generic rules do not know
// the name), and a Redactor that panics costs the names, not the client.
func TestVenueRedactorFieldsAreMaskedInRecordings(t *testing.T) {
	frame := []byte(`{"op":"order","args":{"hmac_blob":"V4LUE-ONE","HmacBlob":"V4LUE-TWO"}}`)
	record := func(t *testing.T, v venue.Venue) []byte {
		t.Helper()
		srv := wstest.NewServer()
		defer srv.Close()
		path := filepath.Join(t.TempDir(), "rec.jsonl")
		box := newInbox()
		opts := []actors.Option{actors.WithRecordFile(path), actors.WithHandler(box.handle), actors.WithHeartbeat(actors.HeartbeatDisabled, 0)}
		if v != nil {
			opts = append(opts, actors.WithVenue(v))
		}
		c := connect(t, newSystem(t), srv.URL(), opts...)
		if err := c.Send(ctxT(t, 5*time.Second), frame); err != nil {
			t.Fatal(err)
		}
		box.next(t) // the echo is in, and recorded
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	raw := record(t, fieldsVenue{fields: []string{"hmacBlob"}})
	if bytes.Contains(raw, []byte("V4LUE")) || bytes.Count(raw, []byte("REDACTED")) < 4 {
		t.Fatalf("the venue's secret field reached the recording:\n%s", raw)
	}
	if raw := record(t, nil); !bytes.Contains(raw, []byte("V4LUE-ONE")) {
		t.Fatalf("without the venue the value is not secret to any rule, yet it was masked: the test proves nothing\n%s", raw)
	}
	if raw := record(t, fieldsVenue{panics: true}); !bytes.Contains(raw, []byte("V4LUE-ONE")) {
		t.Fatalf("a panicking SecretFields: %s", raw)
	}
}

// countingVenue answers {"id":N,"refused":...} frames itself, and counts
// how often the client asks it to.
type countingVenue struct{ n *atomic.Int64 }

func (countingVenue) Name() string           { return "counting" }
func (countingVenue) Dialect() venue.Dialect { return deribit.Dialect{} }
func (v countingVenue) Correlate(data []byte) (venue.Response, bool) {
	v.n.Add(1)
	var f struct {
		ID      json.RawMessage `json:"id"`
		Refused string          `json:"refused"`
	}
	if json.Unmarshal(data, &f) != nil || f.ID == nil {
		return venue.Response{}, false
	}
	r := venue.Response{ID: f.ID, Result: json.RawMessage(`true`)}
	if f.Refused != "" {
		r.Err = &venue.Error{Code: 7, Message: f.Refused}
	}
	return r, true
}

// A venue's answer is read by its Correlator once, on the reader: the
// refusal and the success reach the caller without a second reading.
func TestVenueAnswerIsCorrelatedOnce(t *testing.T) {
	srv := wstest.NewServer() // echoes: the request is its own answer
	defer srv.Close()
	n := new(atomic.Int64)
	c := connect(t, newSystem(t), srv.URL(), actors.WithVenue(countingVenue{n: n}), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	if _, err := c.Request(ctxT(t, 5*time.Second), []byte(`{"id":41,"op":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("a success was correlated %d times, want 1", got)
	}
	_, err := c.Request(ctxT(t, 5*time.Second), []byte(`{"id":42,"refused":"no"}`))
	var rpc *actors.RPCError
	if !errors.As(err, &rpc) || rpc.Code != 7 || rpc.Message != "no" {
		t.Fatalf("refusal: %v", err)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("two answers were correlated %d times, want 2", got)
	}
}
