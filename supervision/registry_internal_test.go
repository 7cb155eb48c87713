package supervision

import (
	"testing"

	"github.com/zenws/zenws/internal/testutil"
)

// The supervisor's shared state is reached through the producer closure
// and, for NewSupervisor and restarts, a per-actor-system registry: no
// package-global map.
func TestNoPackageGlobalRegistry(t *testing.T) { testutil.NoPackageRegistry(t, ".") }
