package review13c

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/supervision"
)

// pvAsked is a venue whose method `which` panics.
type pvAsked struct{ which string }

func (v pvAsked) boom(m string) {
	if v.which == m {
		panic("venue method " + m + " exploded")
	}
}
func (v pvAsked) Name() string                  { v.boom("Name"); return "pvAsked" }
func (v pvAsked) Dialect() venue.Dialect        { v.boom("Dialect"); return deribit.Dialect{} }
func (v pvAsked) RateLimit() *ratelimit.Limiter { v.boom("RateLimit"); return nil }
func (v pvAsked) TextPing() venue.TextPing {
	v.boom("TextPing")
	return venue.TextPing{Ping: []byte("ping"), Pong: []byte("pong"), Every: time.Second}
}

var askedMethods = []string{"Dialect", "RateLimit", "TextPing"}
var entryPoints = []string{"NewConfig", "Connect", "ConnectExplicitText", "Spawn", "PropsOwnParent", "StartClient"}

// Every asked venue method panicking, through every way of starting a
// client: never a crash, always a *ConfigError for Venue (or a client that
// stops with one). Each in a child process. (Guard.)
func TestPanickingVenueEveryEntry(t *testing.T) {
	if spec := os.Getenv("REVIEW13D_PANIC"); spec != "" {
		m, entry, _ := strings.Cut(spec, "/")
		panicChild(t, m, entry)
		return
	}
	for _, m := range askedMethods {
		for _, e := range entryPoints {
			t.Run(m+"/"+e, func(t *testing.T) {
				cmd := exec.Command(os.Args[0], "-test.run", "^TestPanickingVenueEveryEntry$", "-test.v")
				cmd.Env = append(os.Environ(), "REVIEW13D_PANIC="+m+"/"+e)
				out, err := cmd.CombinedOutput()
				s := string(out)
				if err != nil {
					if i := strings.Index(s, "panic: "); i >= 0 {
						s = s[i:min(len(s), i+900)]
					} else if len(s) > 1500 {
						s = s[len(s)-1500:]
					}
					t.Errorf("%s through %s: the child failed: %v\n%s", m, e, err, s)
				}
			})
		}
	}
}

func panicChild(t *testing.T, m, entry string) {
	pe := newRawPeer(t, nil)
	opts := []actors.Option{actors.WithVenue(pvAsked{m}), actors.WithRetryCount(1), actors.WithRetryDelay(10 * time.Millisecond),
		actors.Option(func(c *actors.Config) { c.HostDialRate = 0 })}
	if entry == "ConnectExplicitText" {
		opts = append(opts, actors.WithHeartbeat(actors.HeartbeatText, 50*time.Millisecond))
	}
	wantCfgErr := func(what string, err error) {
		t.Helper()
		var ce *actors.ConfigError
		if !errors.As(err, &ce) || ce.Field != "Venue" {
			t.Errorf("%s: %v, want a *ConfigError for Venue", what, err)
		}
	}
	sys := newSys(t)
	switch entry {
	case "NewConfig":
		_, err := actors.NewConfig(pe.URL, opts...)
		if m == "TextPing" { // asked in NewConfig; the others when a client is made
			wantCfgErr("NewConfig", err)
		}
	case "Connect", "ConnectExplicitText":
		c, err := actors.Connect(ctxT(t, 5*time.Second), sys, pe.URL, opts...)
		if err == nil {
			_ = c.Close()
		}
		wantCfgErr("Connect", err)
	case "Spawn", "PropsOwnParent":
		cfg, err := actors.NewConfig(pe.URL, opts...)
		if err != nil {
			wantCfgErr("NewConfig", err)
			return
		}
		var c *actors.Client
		if entry == "Spawn" {
			c, err = actors.Spawn(sys.Root, cfg)
		} else {
			pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
				if _, ok := ctx.Message().(*actor.Started); ok {
					ctx.Spawn(actors.Props(cfg))
				}
			}))
			defer sys.Root.Stop(pid)
			time.Sleep(500 * time.Millisecond)
			return // no crash is the point
		}
		if err != nil {
			wantCfgErr(entry, err)
			return
		}
		err = c.Wait(ctxT(t, 5*time.Second))
		_ = c.Close()
		t.Logf("Wait: %v, stop reason %v", err, c.Health().StopReason)
		wantCfgErr(entry+" stop reason", c.Health().StopReason)
	case "StartClient":
		s, err := supervision.Start(sys)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		c, err := s.StartClient(ctxT(t, 5*time.Second), pe.URL, opts...)
		if err == nil {
			_ = c.Close()
		}
		wantCfgErr("StartClient", err)
	}
}

// nilDialect is a venue whose Dialect returns nil.
type nilDialect struct{}

func (nilDialect) Name() string           { return "nil" }
func (nilDialect) Dialect() venue.Dialect { return nil }

// A venue whose Dialect() returns nil is silently given Deribit's dialect
// (Config.dialect's fallback): its subscriptions go out as Deribit's
// public/subscribe instead of the configuration being refused.
func TestNilVenueDialectIsDeribit(t *testing.T) {
	pe := newRawPeer(t, nil)
	_, err := actors.NewConfig(pe.URL, actors.WithVenue(nilDialect{}))
	c, cerr := actors.Connect(ctxT(t, 10*time.Second), newSys(t), pe.URL, actors.WithVenue(nilDialect{}),
		actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }))
	if cerr == nil {
		defer c.Close()
		if serr := c.Subscribe(ctxT(t, 5*time.Second), "book.x"); serr == nil {
			t.Errorf("a nil Dialect: NewConfig %v, Connect nil, Subscribe applied with Deribit's dialect", err)
		}
	}
}

var _ = json.Valid
var _ = context.Background

// slowVenue's Dialect blocks until release is closed.
type slowVenue struct{ release chan struct{} }

func (slowVenue) Name() string             { return "slow" }
func (v slowVenue) Dialect() venue.Dialect { <-v.release; return deribit.Dialect{} }

// Low: a venue's Dialect that blocks holds Connect past its ctx (asked on
// the caller's goroutine, in newDurable, without the ctx): Connect with a
// 300 ms ctx has not returned after 5 s.
func TestSlowVenueDialectHoldsConnect(t *testing.T) {
	pe := newRawPeer(t, nil)
	v := slowVenue{release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		c, err := actors.Connect(ctxT(t, 300*time.Millisecond), newSys(t), pe.URL, actors.WithVenue(v),
			actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }))
		if err == nil {
			_ = c.Close()
		}
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("Connect with a 300 ms ctx has not returned after 5 s: the venue's Dialect blocks it")
		close(v.release)
		<-done
		return
	}
	close(v.release)
}

// noPongVenue's text heartbeat has a Ping and no Pong.
type noPongVenue struct{}

func (noPongVenue) Name() string           { return "nopong" }
func (noPongVenue) Dialect() venue.Dialect { return deribit.Dialect{} }
func (noPongVenue) TextPing() venue.TextPing {
	return venue.TextPing{Ping: []byte("ping"), Every: 100 * time.Millisecond}
}

// Low: a TextPing with a Ping and no Pong is accepted (it becomes the
// heartbeat), and then every ping counts as unanswered: the client
// reconnects forever instead of the configuration being refused.
func TestTextPingWithoutPong(t *testing.T) {
	pe := newRawPeer(t, nil)
	if _, err := actors.NewConfig(pe.URL, actors.WithVenue(noPongVenue{})); err != nil {
		return // refused: fine
	}
	c := dial(t, pe.URL, nil, actors.WithVenue(noPongVenue{}), actors.Option(func(c *actors.Config) {
		c.Heartbeat = actors.HeartbeatText
		c.HeartbeatInterval = 100 * time.Millisecond
	}))
	time.Sleep(1500 * time.Millisecond)
	if h := c.Health(); h.HeartbeatMisses > 0 {
		t.Errorf("a TextPing without Pong is accepted and every ping counts as unanswered (%d misses, %d reconnects)", h.HeartbeatMisses, h.Reconnects)
	}
}
