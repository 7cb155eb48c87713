package review16

import (
	"go/ast"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/zenws/zenws/internal/testutil"
)

// exported lists the exported top-level names of the package in dir.
func exported(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range testutil.ParsePackage(t, token.NewFileSet(), dir) {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && ast.IsExported(d.Name.Name) {
					out[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch sp := spec.(type) {
					case *ast.TypeSpec:
						if ast.IsExported(sp.Name.Name) {
							out[sp.Name.Name] = true
						}
					case *ast.ValueSpec:
						for _, n := range sp.Names {
							if ast.IsExported(n.Name) {
								out[n.Name] = true
							}
						}
					}
				}
			}
		}
	}
	return out
}

// TestNodeKindsDocNamesARealIdentifier: membership.Node's doc (go doc
// ./balancer/cluster/membership Node) says its Kinds are "the cluster
// kinds (virtual actors) this node hosts, for example budget.Kind
// (package balancer/cluster/budget)". A new user looks for it: there is no
// budget.Kind (the budget is a named actor, ActorName, not a kind).
func TestNodeKindsDocNamesARealIdentifier(t *testing.T) {
	src, err := os.ReadFile("../../balancer/cluster/membership/membership.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "budget.Kind") {
		return // the doc no longer names it
	}
	if !exported(t, "../../balancer/cluster/budget")["Kind"] {
		t.Errorf("membership.Node's doc names budget.Kind; package budget exports no Kind")
	}
}
