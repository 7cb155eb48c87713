package actors

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// The host dial pacer is shared by the clients of one actor system per
// host and settings, and never across systems (it lives in the system's
// extensions, not in a package-global map).
func TestHostPacerIsPerSystemAndHost(t *testing.T) {
	sys1 := actor.NewActorSystem(ActorSystemLogger(zap.NewNop()))
	defer sys1.Shutdown()
	sys2 := actor.NewActorSystem(ActorSystemLogger(zap.NewNop()))
	defer sys2.Shutdown()
	cfg := func(url string, opts ...Option) Config {
		c, err := NewConfig(url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := hostPacer(sys1, cfg("ws://Venue.example:9000/a"))
	switch {
	case a == nil:
		t.Fatal("no pacer by default")
	case hostPacer(sys1, cfg("ws://venue.example:9000/b?x=1")) != a:
		t.Fatal("two clients of one system and host got different pacers")
	case hostPacer(sys2, cfg("ws://venue.example:9000/a")) == a:
		t.Fatal("two actor systems share a pacer")
	case hostPacer(sys1, cfg("ws://venue.example:9001/a")) == a:
		t.Fatal("two ports share a pacer")
	case hostPacer(sys1, cfg("ws://venue.example:9000/a", func(c *Config) { c.HostDialRate, c.HostDialBurst = 5, 1 })) == a:
		t.Fatal("different settings share a pacer")
	case hostPacer(sys1, cfg("ws://venue.example:9000/a", func(c *Config) { c.HostDialRate, c.HostDialBurst = 0, 0 })) != nil:
		t.Fatal("pacing off still paced")
	}
	if b := a.Buckets(); len(b) != 1 || b[0].Rate != defaultHostDialRate || b[0].Burst != defaultHostDialBurst {
		t.Fatalf("pacer %+v", b)
	}
	for url, want := range map[string]string{"ws://h/": "h:80", "wss://H/x": "h:443", "wss://h:8443": "h:8443", "ws://[::1]/": "[::1]:80"} {
		if got := dialHost(url); got != want {
			t.Errorf("dialHost(%q) = %q, want %q", url, got, want)
		}
	}
}
