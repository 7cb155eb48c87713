package balancer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/transport/wstest"
)

// Three clients on three servers; one server dies and balanced calls keep
// going through the others.
func Example() {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var pids []*actor.PID
	var servers []*wstest.Server
	for i := 0; i < 3; i++ {
		srv := wstest.NewServer(wstest.WithDeribit())
		defer srv.Close()
		c, err := actors.Connect(ctx, sys, srv.URL(), actors.WithRetryDelay(50*time.Millisecond))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		pids, servers = append(pids, c.PID()), append(servers, srv)
	}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Stop()

	servers[0].Close()
	failed := 0
	for i := 0; i < 100; i++ {
		if _, err := b.Call(ctx, "public/get_time", nil); err != nil { // public/*: retry-safe
			failed++
		}
	}
	fmt.Println("failed calls:", failed)
	// Output: failed calls: 0
}
