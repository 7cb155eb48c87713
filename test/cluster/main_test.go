package cluster

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/zenws/zenws/internal/testutil"
)

// TestMain runs a node when the process was started as one (nodeEnv), and
// the tests otherwise, with the leak check of testutil.LeakOptions (this
// package starts no testutil server process).
func TestMain(m *testing.M) {
	if cfg := os.Getenv(nodeEnv); cfg != "" {
		os.Exit(nodeMain(cfg))
	}
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}
