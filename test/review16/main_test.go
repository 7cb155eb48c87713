// Package review16 holds the adversarial review of issue 16 (one pool
// across processes): a test per finding (FINDINGS.md), and the guards
// for what held up. Some tests run nodes as OS processes: the test binary
// started again with ZENWS_REVIEW16_NODE carrying the node's config.
package review16

import (
	"os"
	"testing"

	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(nodeEnv); cfg != "" {
		os.Exit(runNode(cfg))
	}
	testutil.VerifyTestMain(m)
}

// openFinding skips a test whose finding is still open, unless
// ZENWS_REVIEW_OPEN is set.
func openFinding(t *testing.T, n int) {
	t.Helper()
	if os.Getenv("ZENWS_REVIEW_OPEN") == "" {
		t.Skipf("open finding %d of test/review16/FINDINGS.md (ZENWS_REVIEW_OPEN=1 runs it)", n)
	}
}

// openFindingB is openFinding for the second review's findings
// (FINDINGS-review16b.md, numbered on their own).
func openFindingB(t *testing.T, n int) {
	t.Helper()
	if os.Getenv("ZENWS_REVIEW_OPEN") == "" {
		t.Skipf("open finding %d of test/review16/FINDINGS-review16b.md (ZENWS_REVIEW_OPEN=1 runs it)", n)
	}
}
