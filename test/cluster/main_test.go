package cluster

import (
	"os"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/zenws/zenws/internal/testutil"
)

// TestMain runs a node when the process was started as one (nodeEnv), and
// the tests otherwise, with the leak check of testutil.LeakOptions (this
// package starts no testutil server process) and two more roots ignored:
// the Toxiproxy goroutines a cut connection can strand (a Toxiproxy bug,
// in the instrument; see test/chaos's leakOptions for the whole story).
func TestMain(m *testing.M) {
	if cfg := os.Getenv(nodeEnv); cfg != "" {
		os.Exit(nodeMain(cfg))
	}
	zerolog.SetGlobalLevel(zerolog.Disabled) // Toxiproxy's toxics log through it
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
	)...)
}
