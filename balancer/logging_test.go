package balancer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
)

// The balancer names a PID as one readable string (before: protobuf text,
// pid=`Address:"nonhost" Id:"..."`).
func TestLogsNamePIDsReadably(t *testing.T) {
	sys := testutil.NewSystem(t)
	core, logs := observer.New(zap.InfoLevel)
	bogus := actor.NewPID("nonhost", "not-a-client")
	b, err := balancer.New(sys, balancer.WithLogger(zap.New(core)), balancer.WithDiscovery(func() []*actor.PID { return []*actor.PID{bogus} }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	testutil.Eventually(t, 5*time.Second, "the skipped PID's line", func() bool {
		return logs.FilterMessageSnippet("not a usable client").Len() > 0
	})
	e := logs.FilterMessageSnippet("not a usable client").All()[0]
	if pid := e.ContextMap()["pid"]; pid != "not-a-client" || strings.Contains(pid.(string), "Address:") {
		t.Fatalf("pid=%v, want \"not-a-client\"", pid)
	}
}
