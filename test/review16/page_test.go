package review16

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
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
	"github.com/zenws/zenws/transport/wstest"
)

// secretPage is a page of two clients whose URLs carry secrets: one
// connected (query and userinfo), one redialling a closed port (its
// LastError is a dial failure naming the URL).
func secretPage(t *testing.T) (string, []string) {
	t.Helper()
	sys := quietSystem(t)
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	secrets := []string{"QUERYSECRET1", "SIGSECRET2", "PASSSECRET3", "DEADSECRET4"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u := strings.Replace(srv.URL(), "ws://", "ws://user:PASSSECRET3@", 1) + "/ws?api_key=QUERYSECRET1&signature=SIGSECRET2"
	c1, err := actors.Connect(ctx, sys, u, actors.WithLabel("ok"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c1.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	cfg, err := actors.NewConfig("ws://"+dead+"/ws?api_key=DEADSECRET4", actors.WithLabel("dead"),
		actors.WithRetryCount(actors.RetryForever), actors.WithRetryDelay(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := actors.Spawn(sys.Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	pids := []*actor.PID{c1.PID(), c2.PID()}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	mux := http.NewServeMux()
	mux.Handle("/zenws/", opspage.New(sys, map[string]*balancer.Balancer{"p": b}))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	url := hs.URL + "/zenws/"
	deadline := time.Now().Add(10 * time.Second) // until the dead client has a last error
	for {
		var p opspage.Page
		getJSON(t, url+"?format=json", &p)
		n := 0
		for _, c := range clientsOf(p) {
			if c.LastError != "" || c.State == "connected" {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed both clients (one connected, one with its dial error): %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return url, secrets
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPageShowsNoSecretOfAURL: issue 16's brief: "secrets (URLs with
// query strings, keys) never on the page" (guard: held up).
func TestPageShowsNoSecretOfAURL(t *testing.T) {
	url, secrets := secretPage(t)
	var p opspage.Page
	getJSON(t, url+"?format=json", &p)
	views := []string{url, url + "?format=json"}
	for _, c := range clientsOf(p) {
		views = append(views, url+"?pool=p&client="+c.ID, url+"?pool=p&format=json&client="+c.ID)
	}
	for _, v := range views {
		code, body := fetch(t, v)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", v, code)
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s shows the secret %s", v, s)
			}
		}
	}
}

// TestPageUnderHostileRequests: huge and malformed queries, many at
// once: a bounded answer each, no 5xx, nothing hangs (guard: held up).
func TestPageUnderHostileRequests(t *testing.T) {
	url, _ := secretPage(t)
	huge := strings.Repeat("A", 100_000)
	qs := []string{"?limit=-1", "?limit=999999999999999999999", "?offset=-5", "?offset=9223372036854775807",
		"?offset=9223372036854775806&limit=1000", "?pool=" + huge, "?pool=p&client=" + huge, "?format=" + huge,
		"?pool=%00%ff%3Cscript%3E", "?limit=1e3", "?" + strings.Repeat("a=1&", 5000)}
	for _, q := range qs {
		code, body := fetch(t, url+q)
		if code >= 500 || code == 0 {
			t.Errorf("GET %.80s: %d", q, code)
		}
		if len(body) > 200_000 {
			t.Errorf("GET %.80s: %d bytes of answer", q, len(body))
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("GET %.80s: markup from the query in the answer", q)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(fmt.Sprintf("%s?format=json&i=%d", url, i))
			if err != nil {
				errs <- err.Error()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- resp.Status
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("one of 200 concurrent requests: %s", e)
	}
}

// TestHTMLShowsWhatTheJSONSays: for every client of the JSON page, the
// HTML page shows its label, state, why it is not picked and its last
// error (guard: held up if it passes).
func TestHTMLShowsWhatTheJSONSays(t *testing.T) {
	url, _ := secretPage(t)
	var p opspage.Page
	getJSON(t, url+"?format=json", &p)
	_, body := fetch(t, url)
	for _, c := range clientsOf(p) {
		for what, v := range map[string]string{"label": c.Label, "state": c.State, "not_picked": c.NotPicked, "last_error": c.LastError} {
			if v != "" && !strings.Contains(body, html.EscapeString(v)) && !strings.Contains(body, v) {
				t.Errorf("client %s: the JSON's %s %q is not on the HTML page", c.ID, what, v)
			}
		}
	}
}
