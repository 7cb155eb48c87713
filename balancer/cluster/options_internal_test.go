package cluster

import (
	"strings"
	"testing"
	"time"
)

// Every option out of range is an error naming it; the silence timeout
// follows a long SyncInterval unless it is set.
func TestOptionsAreValidated(t *testing.T) {
	for _, c := range []struct {
		opt  Option
		want string // "" for valid
	}{
		{WithSyncInterval(0), "SyncInterval"},
		{WithSyncInterval(-time.Second), "SyncInterval"},
		{WithFlushInterval(0), "FlushInterval"},
		{WithMaxInFlight(0), "MaxInFlight"},
		{WithRequestTimeout(-1), "RequestTimeout"},
		{WithStopWait(0), "StopWait"},
		{WithSilenceTimeout(time.Second), "SilenceTimeout"}, // under twice the 1 s SyncInterval
		{WithSilenceTimeout(-time.Second), "SilenceTimeout"},
		{WithSilenceTimeout(2 * time.Second), ""},
		{nil, ""},
	} {
		err := newOptions([]Option{c.opt}).validate()
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("option for %q: %v", c.want, err)
		}
	}
	if o := newOptions(nil); o.silence != DefaultSilenceTimeout {
		t.Errorf("default silence timeout %v", o.silence)
	}
	if o := newOptions([]Option{WithSyncInterval(5 * time.Second)}); o.silence != 15*time.Second || o.validate() != nil {
		t.Errorf("silence timeout with a 5 s SyncInterval: %v (%v), want 15 s", o.silence, o.validate())
	}
}
