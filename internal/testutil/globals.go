package testutil

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ParsePackage parses the non-test Go files in dir.
func ParsePackage(t testing.TB, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// NoPackageRegistry fails t if a non-test file of the package in dir
// declares a package-level variable that is a map or a sync type (a
// sync.Map registry, a mutex-guarded table): per-PID state belongs to the
// producer closure, the handle or a per-actor-system registry
// (internal/sysreg), never to the package. A sync.Pool is allowed: it
// recycles memory (pending-request entries), it holds no state of a client.
func NoPackageRegistry(t testing.TB, dir string) {
	t.Helper()
	fset := token.NewFileSet()
	for _, f := range ParsePackage(t, fset, dir) {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				bad := false
				ast.Inspect(vs, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.MapType:
						bad = true
					case *ast.SelectorExpr:
						if id, ok := n.X.(*ast.Ident); ok && id.Name == "sync" && n.Sel.Name != "Pool" {
							bad = true
						}
					case *ast.FuncLit:
						return false // a function's own locals are not the package's
					}
					return true
				})
				if bad {
					t.Errorf("%s: package-level %s is a map or sync value: keep per-PID state out of package globals",
						fset.Position(vs.Pos()), vs.Names[0].Name)
				}
			}
		}
	}
}
