package review16

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// exported lists the exported top-level names of the package in dir.
func exported(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for name, obj := range f.Scope.Objects {
				if ast.IsExported(name) {
					out[name] = obj != nil
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
