package actors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/transport/wstest"
)

// cancelAllAfter is a venue whose dead man's switch is a request
// {"method":"private/cancel_all_after","params":{"timeout":ms}}: the venue
// cancels every open order unless the request comes again within timeout.
type cancelAllAfter struct{}

func (cancelAllAfter) Name() string                { return "example" }
func (cancelAllAfter) Dialect() venue.Dialect      { return deribit.Dialect{} }
func (cancelAllAfter) DeadManAfter() time.Duration { return 30 * time.Second }
func (cancelAllAfter) ArmDeadMan(ctx context.Context, s venue.Session, after time.Duration) error {
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"private/cancel_all_after","params":{"timeout":%d}}`,
		s.NextID(), after.Milliseconds())
	_, err := s.Request(ctx, []byte(msg)) // a refusal fails the connection attempt
	return err
}

// A venue with a dead man's switch (venue.DeadMan) has it armed on every
// connection before the client reports itself connected, and renewed every
// half timeout while the connection is open.
func Example_deadMan() {
	armed := make(chan float64, 16)
	srv := wstest.NewServer(wstest.WithResponder("private/cancel_all_after",
		func(_ *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
			var p struct{ Timeout float64 }
			_ = json.Unmarshal(params, &p)
			armed <- p.Timeout
			return "ok", nil
		}))
	defer srv.Close()
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, srv.URL(), actors.WithVenue(cancelAllAfter{}))
	if err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer c.Close()
	fmt.Println(c.State(), "with the switch armed for", time.Duration(<-armed)*time.Millisecond)
	// Output:
	// connected with the switch armed for 30s
}
