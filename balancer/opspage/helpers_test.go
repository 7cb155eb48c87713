package opspage_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/balancer/opspage"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// hostileLabel is as hostile as a label may be (WithLabel allows 64 bytes
// of printable text): markup that would run if it were not escaped.
const hostileLabel = `<script>alert(1)</script><b>x`

// venueRefusal is what the refusing venue answers for a "bad." channel:
// 10 KiB of markup and control characters.
var venueRefusal = "<img src=x onerror=alert(2)>\x1b[31m\r\nforged line\x00" + strings.Repeat("<i>", 3400)

// pool is a real pool on 127.0.0.1: wstest servers, clients, a balancer.
type pool struct {
	sys     *actor.ActorSystem
	servers []*wstest.Server
	clients []*actors.Client
	bal     *balancer.Balancer
}

// refusingVenue is a Deribit-like server that refuses channels named
// "bad.*" with venueRefusal.
func refusingVenue() *wstest.Server {
	return wstest.NewServer(wstest.WithDeribit(), wstest.WithResponder("public/subscribe",
		func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
			var p struct{ Channels []string }
			_ = json.Unmarshal(params, &p)
			var ok []string
			for _, ch := range p.Channels {
				if strings.HasPrefix(ch, "bad.") {
					return nil, &wstest.RPCError{Code: 10001, Message: venueRefusal}
				}
				ok = append(ok, ch)
			}
			return c.Subscribe(ok...), nil
		}))
}

// newPool starts one server per label in labels and perLabel clients on
// each, labelled, retrying for ever.
func newPool(t testing.TB, sys *actor.ActorSystem, labels []string, perLabel int) *pool {
	t.Helper()
	ctx := testutil.Context(t, 30*time.Second)
	p := &pool{sys: sys}
	var mu sync.Mutex
	for _, label := range labels {
		srv := refusingVenue()
		t.Cleanup(srv.Close)
		p.servers = append(p.servers, srv)
		// Short waits: a dropped venue's clients come back at once. The
		// hostile label's venue refuses a channel: long waits keep that
		// channel failed (not pending a retry) while a test looks.
		delay := 20 * time.Millisecond
		if label == hostileLabel {
			delay = time.Minute
		}
		var wg sync.WaitGroup
		errs := make(chan error, perLabel)
		for i := 0; i < perLabel; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := actors.Connect(ctx, sys, srv.URL(), actors.WithLabel(label),
					actors.WithRetryCount(actors.RetryForever), actors.WithRetryDelay(delay),
					actors.WithMaxBackoff(10*delay))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				p.clients = append(p.clients, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range p.clients {
			_ = c.Close()
		}
	})
	pids := make([]*actor.PID, 0, len(p.clients))
	for _, c := range p.clients {
		pids = append(pids, c.PID())
	}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	p.bal = b
	return p
}

// serve serves h under /zenws/ on 127.0.0.1 for the test.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/zenws/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/zenws/"
}

// get fetches url with an Accept header, returning status and body.
func get(t testing.TB, url, accept string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// getJSON fetches url as JSON into v, returning the status.
func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	code, body := get(t, url, "application/json")
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %q", url, err, body)
	}
	return code
}

// page fetches the JSON page.
func page(t testing.TB, url string) opspage.Page {
	t.Helper()
	var p opspage.Page
	if code := getJSON(t, url, &p); code != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, code)
	}
	return p
}
