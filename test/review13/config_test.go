package review13

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
)

func TestConfigEdges(t *testing.T) {
	for name, opt := range map[string]actors.Option{
		"retry -2":      actors.WithRetryCount(-2),
		"label ctrl":    actors.WithLabel("md\n{\"level\":\"error\"}"),
		"label 65":      actors.WithLabel(strings.Repeat("a", 65)),
		"label invalid": actors.WithLabel("\xff\xfe"),
		"label ansi":    actors.WithLabel("x\x1b[31mred"),
		"label bidi":    actors.WithLabel("abc\u202edcba"),
	} {
		_, err := actors.NewConfig("ws://127.0.0.1:1/", opt)
		if !errors.As(err, new(*actors.ConfigError)) {
			t.Errorf("%s: want ConfigError, got %v", name, err)
		}
	}
	if _, err := actors.NewConfig("ws://127.0.0.1:1/", actors.WithLabel(strings.Repeat("é", 32))); err != nil {
		t.Errorf("64-byte UTF-8 label: %v", err)
	}
}

// A stuck StateObserver and a stuck OnConnect: Close and Supervisor.Stop stay bounded.
func TestStuckCallbacksBounded(t *testing.T) {
	v := newVenue(t, false)
	sys := testutil.NewSystem(t)
	sup, err := supervision.Start(sys, supervision.WithStopWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	var after atomic.Bool
	var lateCalls atomic.Int64
	ctx := testutil.Context(t, 10*time.Second)
	_, err = sup.StartClient(ctx, v.url, baseOpts(func(c *actors.Config) { c.CloseWait = 300 * time.Millisecond },
		actors.WithOnConnect(func(*actorPID) {
			if after.Load() {
				lateCalls.Add(1)
			}
			<-release
		}),
		actors.WithStateObserver(func(actors.StateChange) {
			if after.Load() {
				lateCalls.Add(1)
			}
			<-release
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	err = sup.Stop()
	after.Store(true)
	t.Logf("Stop with stuck callbacks: %v in %v", err, time.Since(start))
	if time.Since(start) > 3*time.Second {
		t.Errorf("Stop took %v (StopWait 1 s, CloseWait 300 ms)", time.Since(start))
	}
	if n := len(sup.ListClients()); n != 0 {
		t.Errorf("ListClients after Stop: %d", n)
	}
	time.Sleep(200 * time.Millisecond)
	if lateCalls.Load() != 0 {
		t.Errorf("%d callback calls started after Stop returned", lateCalls.Load())
	}
}
