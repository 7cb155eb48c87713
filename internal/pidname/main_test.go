package pidname

import (
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines. (internal/testutil imports actors,
// which imports this package.)
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
