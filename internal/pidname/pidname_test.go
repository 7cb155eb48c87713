package pidname

import (
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

func TestString(t *testing.T) {
	for _, c := range []struct {
		pid  *actor.PID
		want string
	}{
		{nil, "<nil>"},
		{actor.NewPID("nonhost", "$1/client-3"), "$1/client-3"},
		{actor.NewPID("", "$2"), "$2"},
		{actor.NewPID("10.0.0.7:8090", "$1/client-3"), "10.0.0.7:8090/$1/client-3"},
	} {
		if got := String(c.pid); got != c.want {
			t.Errorf("String(%v) = %q, want %q", c.pid, got, c.want)
		}
		if strings.Contains(String(c.pid), "Address:") {
			t.Errorf("String(%v) holds the protobuf text form", c.pid)
		}
	}
	if f := Field("client", actor.NewPID("nonhost", "$7")); f.Key != "client" || f.String != "$7" {
		t.Errorf("Field = %+v", f)
	}
}
