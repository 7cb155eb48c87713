package balancer

import (
	"testing"

	"github.com/zenws/zenws/internal/testutil"
)

// The router's shared state is reached through the producer closure and,
// for Of, a per-actor-system registry: no package-global map.
func TestNoPackageGlobalRegistry(t *testing.T) { testutil.NoPackageRegistry(t, ".") }
