package review13c

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/supervision"
)

// (Guard.) README's quick start and supervisor snippets compile against
// the cut API (not run: they dial an outside host).
func TestReadmeSnippetsCompile(t *testing.T) {
	_ = readmeQuickStart
	_ = readmeSupervised
}

func readmeQuickStart() {
	logger, _ := zap.NewDevelopment()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(logger))
	defer sys.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := actors.Connect(ctx, sys, "wss://test.deribit.com/ws/api/v2",
		actors.WithLogger(logger),
		actors.WithHeartbeat(actors.HeartbeatPingPong, 15*time.Second),
		actors.WithHandler(func(in actors.Inbound) {
			fmt.Printf("gen %d #%d %s: %s\n", in.Generation, in.Seq, in.Kind, in.Data)
		}))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	_ = client.Send(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"public/test","params":{}}`))
	fmt.Printf("%+v\n", client.Health())
}

func readmeSupervised(sys *actor.ActorSystem, ctx context.Context) {
	sup, _ := supervision.Start(sys, supervision.WithRestartBudget(10, time.Minute))
	defer sup.Stop()
	client, err := sup.StartClient(ctx, "wss://test.deribit.com/ws/api/v2",
		actors.WithHeartbeat(actors.HeartbeatDeribit, 30*time.Second))
	_, _ = client, err
}
