package opspage_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/opspage"
	"github.com/zenws/zenws/transport/wstest"
)

// Serving the page of a balancer at /zenws/ (in a program,
// http.Handle("/zenws/", page) on the default mux does the same), with a
// readiness rule for Kubernetes: at least one healthy client labelled
// "deribit".
func Example() {
	sys := actor.NewActorSystem(actors.ActorSystemLogger(zap.NewNop()))
	defer sys.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	venue := wstest.NewServer(wstest.WithDeribit())
	defer venue.Close()
	client, err := actors.Connect(ctx, sys, venue.URL(), actors.WithLabel("deribit"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return []*actor.PID{client.PID()} }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Stop()

	page := opspage.New(sys, map[string]*balancer.Balancer{"orders": b}, opspage.WithReadiness(1, "deribit"))
	mux := http.NewServeMux()
	mux.Handle("/zenws/", page) // the page, ?format=json, readyz and livez below it
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, path := range []string{"/zenws/readyz", "/zenws/livez"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode, len(body) > 0)
	}
	// Output:
	// /zenws/readyz 200 true
	// /zenws/livez 200 true
}
