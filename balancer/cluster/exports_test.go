package cluster_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/zenws/zenws/balancer/cluster"
)

// The cluster's API is the Agent and its options: the generated wire types
// (State, Subscribe, Op...) are internal, so they no longer sit beside
// actors.State and Client.Subscribe.
func TestExportsAreTheAgentsAPIOnly(t *testing.T) {
	want := []string{
		"Agent", "AgentName", "DefaultFlushInterval", "DefaultMaxInFlight", "DefaultRequestTimeout",
		"DefaultStopWait", "DefaultSyncInterval", "ErrRemote", "MaxWireMessage", "Option", "Start", "Stats",
		"WithFlushInterval", "WithLogger", "WithMaxInFlight", "WithRequestTimeout", "WithStopWait", "WithSyncInterval",
	}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range pkgs["cluster"].Files {
		for name, obj := range f.Scope.Objects {
			if ast.IsExported(name) && obj.Kind != ast.Bad {
				got = append(got, name)
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("exported names:\n got %v\nwant %v", got, want)
	}
}

// The wire messages keep their registered file and proto names (so nodes
// of either layout decode each other's messages), now declared by the
// internal package.
func TestWireRegistration(t *testing.T) {
	fd, err := protoregistry.GlobalFiles.FindFileByPath("wire.proto")
	if err != nil {
		t.Fatal(err)
	}
	if fd.Package() != "zenws.balancer.cluster" {
		t.Fatalf("proto package %q", fd.Package())
	}
	if gp := fd.Options().(*descriptorpb.FileOptions).GetGoPackage(); gp != "github.com/zenws/zenws/balancer/cluster/internal/wire" {
		t.Fatalf("go_package %q", gp)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("zenws.balancer.cluster.Op"))
	if err != nil {
		t.Fatal(err)
	}
	if p := mt.Descriptor().ParentFile().Path(); p != "wire.proto" {
		t.Fatalf("Op registered from %q", p)
	}
}
