package actors_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/transport/wstest"
)

func TestRecordingAndReplay(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "session.jsonl")
	box := newInbox()
	c, err := actors.Connect(ctxT(t, 5*time.Second), newSystem(t), srv.URL(), actors.WithRecordFile(path), actors.WithHandler(box.handle))
	if err != nil {
		t.Fatal(err)
	}
	secret := `{"jsonrpc":"2.0","id":1,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":"me","client_secret":"S3CRET"}}`
	for _, m := range []string{"hello", secret} {
		if err := c.Send(ctxT(t, time.Second), []byte(m)); err != nil {
			t.Fatal(err)
		}
		box.next(t)
	}
	if err := c.SendBinary(ctxT(t, time.Second), []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	box.next(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("S3CRET")) {
		t.Fatalf("a secret reached the recording:\n%s", raw)
	}
	var recs []record.Record
	if err := record.Replay(bytes.NewReader(raw), func(r record.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	// A write is recorded once it returns (with the time it began), so an
	// echo's "in" line can land before its "out" line; the timestamps keep
	// the true order.
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	if len(recs) != 6 || recs[0].Dir != record.DirOut || recs[0].Data != "hello" || recs[1].Dir != record.DirIn || recs[1].Generation != 1 {
		t.Fatalf("records: %+v", recs)
	}
	if !strings.Contains(recs[2].Data, `"client_id":"me"`) || !strings.Contains(recs[2].Data, "REDACTED") {
		t.Fatalf("redacted record lost its shape: %s", recs[2].Data)
	}
	if b, _ := base64.StdEncoding.DecodeString(recs[4].Data); !recs[4].Binary || !bytes.Equal(b, []byte{0, 1, 2}) {
		t.Fatalf("binary record: %+v", recs[4])
	}
	sum, err := record.Summarize(bytes.NewReader(raw))
	if err != nil || sum.Records != 6 || sum.In != 3 || sum.Out != 3 || sum.Duration() < 0 {
		t.Fatalf("Summarize = %+v, %v", sum, err)
	}
	if err := record.Replay(strings.NewReader("{\"dir\":\"in\"}\nnot json\n"), func(record.Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Replay of a broken file = %v", err)
	}
	if _, err := actors.NewConfig(srv.URL(), actors.WithRecordFile("/no/such/dir/x.jsonl")); err == nil {
		t.Fatal("a record file in a missing directory was accepted")
	}
}
