package actors_test

import (
	"context"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
)

// BenchmarkCall is one sequential Client.Call after another against the
// lean JSON-RPC server in this process. Its allocs/op include the server's
// (read and answer); run it with -memprofile to see the client's alone
// (docs/performance.md shows how).
func BenchmarkCall(b *testing.B) {
	url, stop := leanRPCServer()
	defer stop()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	c, err := actors.Connect(context.Background(), sys, url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Call(ctx, "public/test", nil); err != nil {
			b.Fatal(err)
		}
	}
}
