package supervision_test

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

// Supervision names a client by its PID's id (before: protobuf text,
// client=`Address:"nonhost" Id:"..."`), on its restart and stop lines.
func TestLogsNameTheClientReadably(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	core, logs := observer.New(zap.InfoLevel)
	sys := newSystem(t)
	s := start(t, sys, supervision.WithLogger(zap.New(core)))
	c, err := s.StartClient(ctxT(t, 5*time.Second), srv.URL(), fast()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitConns(ctxT(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	srv.DropAll() // RetryCount 0: a failure, and a restart
	eventually(t, 5*time.Second, "the restart line", func() bool { return logs.FilterMessage("restarting client").Len() > 0 })
	if err := s.StopClient(c.PID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the stop line", func() bool { return logs.FilterMessage("client stopped").Len() > 0 })
	for _, msg := range []string{"restarting client", "client stopped"} {
		if got := logs.FilterMessage(msg).All()[0].ContextMap()["client"]; got != c.PID().Id {
			t.Fatalf("%q: client=%v, want %q", msg, got, c.PID().Id)
		}
	}
}
