package cluster_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/zenws/zenws/internal/testutil"
)

// TestMain is testutil.VerifyTestMain with one more goroutine ignored
// (VerifyTestMain takes no options, so its two steps are spelled out; this
// package starts no server process, so serveIfChild has nothing to do):
//
//   - The in-memory test provider (cluster/clusterproviders/test) refreshes
//     its member's TTL in `for range ticker.C`; Shutdown stops the ticker,
//     which never closes its channel, so the goroutine never ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/test.(*Provider).startTtlReport.func1"),
	)...)
}
