package actors_test

import (
	"bytes"
	"os"
	"path/filepath"
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
