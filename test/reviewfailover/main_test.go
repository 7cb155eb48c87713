// Package reviewfailover holds the adversarial review of commit 19a6c9a
// (a balanced operation's final error keeps the first attempt that may
// have reached the server): a test per finding (FINDINGS.md), and guards
// for what held up. The peers are this package's own hostile WebSocket
// servers on 127.0.0.1 (server_test.go), not transport/wstest.
package reviewfailover

import (
	"testing"

	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }
