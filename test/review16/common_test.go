package review16

import (
	"strings"
	"testing"

	"github.com/zenws/zenws/balancer/opspage"
)

// Helpers of the second review's tests (FINDINGS-review16b.md).

// ownClientID is the actor id of the first client a node's page lists as
// its own.
func ownClientID(t *testing.T, page string) string {
	t.Helper()
	var p opspage.Page
	getJSON(t, page+"?format=json", &p)
	for _, c := range clientsOf(p) {
		if !c.Remote {
			return c.ID[strings.LastIndex(c.ID, "/")+1:]
		}
	}
	t.Fatalf("no client of its own on %s", page)
	return ""
}
