package cluster_test

import (
	"go/ast"
	"go/token"
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/zenws/zenws/balancer/cluster"
	"github.com/zenws/zenws/internal/testutil"
)

// The cluster's API is the Agent and its options: the generated wire types
// (State, Subscribe, Op...) are internal, so they no longer sit beside
// actors.State and Client.Subscribe.
func TestExportsAreTheAgentsAPIOnly(t *testing.T) {
	want := []string{
		"Agent", "AgentName", "DefaultFlushInterval", "DefaultMaxInFlight", "DefaultRequestTimeout",
		"DefaultSilenceTimeout", "DefaultStopWait", "DefaultSyncInterval", "EndpointBatch", "ErrExpelled", "ErrRemote", "MaxRemoteMessage", "MaxWireMessage", "Option", "RemoteError", "RemoteOptions", "Start", "Stats",
		"WithFlushInterval", "WithLogger", "WithMaxInFlight", "WithMembers", "WithRequestTimeout", "WithSilenceTimeout", "WithStopWait", "WithSyncInterval",
	}
	var got []string
	for _, f := range testutil.ParsePackage(t, token.NewFileSet(), ".") {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					got = append(got, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch sp := spec.(type) {
					case *ast.TypeSpec:
						if sp.Name.IsExported() {
							got = append(got, sp.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range sp.Names {
							if n.IsExported() {
								got = append(got, n.Name)
							}
						}
					}
				}
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
