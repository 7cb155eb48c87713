package review15b

import (
	"os"
	"testing"
)

// openFinding skips a test whose finding (FINDINGS.md) is not fixed yet:
// the test stays as the guard, and the next session that fixes the finding
// removes the call. Set ZENWS_REVIEW_OPEN=1 to run them anyway.
func openFinding(t *testing.T, n int) {
	t.Helper()
	if os.Getenv("ZENWS_REVIEW_OPEN") == "" {
		t.Skipf("open finding %d of test/review15b/FINDINGS.md (ZENWS_REVIEW_OPEN=1 runs it)", n)
	}
}
