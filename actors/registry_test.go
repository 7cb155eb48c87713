package actors_test

import (
	"testing"

	"github.com/zenws/zenws/internal/testutil"
)

// The durable state of a client and the meter cache live in the actor
// system (internal/sysreg), never in a package-level map (issue 13).
func TestNoPackageGlobalRegistry(t *testing.T) { testutil.NoPackageRegistry(t, ".") }
