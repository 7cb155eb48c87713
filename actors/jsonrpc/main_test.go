package jsonrpc

import (
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines. (internal/testutil.VerifyTestMain
// imports actors, which imports this package.)
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
