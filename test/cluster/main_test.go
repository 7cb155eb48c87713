package cluster

import (
	"os"
	"testing"

	"github.com/zenws/zenws/internal/testutil"
)

// TestMain runs a node when the process was started as one (nodeEnv), and
// the tests, with the leak check, otherwise.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(nodeEnv); cfg != "" {
		os.Exit(nodeMain(cfg))
	}
	testutil.VerifyTestMain(m)
}
