package membership_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/balancer/cluster/membership"
	"github.com/zenws/zenws/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// The constructors refuse what cannot work, before anything starts; a
// config has the settings the agent needs. (Members started over etcd and
// automanaged, in processes of their own: test/cluster.)
func TestConfigs(t *testing.T) {
	if _, err := membership.Automanaged(membership.Node{}, 0, 0, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "HTTP port") {
		t.Errorf("Automanaged with port 0: %v", err)
	}
	if _, err := membership.Automanaged(membership.Node{}, 6330, 0); err == nil || !strings.Contains(err.Error(), "no peers") {
		t.Errorf("Automanaged without peers: %v", err)
	}
	if _, err := membership.Etcd(membership.Node{}); err == nil || !strings.Contains(err.Error(), "no endpoints") {
		t.Errorf("Etcd without endpoints: %v", err)
	}
	if _, err := membership.Start(nil, nil); err == nil {
		t.Error("Start(nil, nil) did not fail")
	}
	cfg, err := membership.Etcd(membership.Node{Port: 7001}, "127.0.0.1:2379") // connects only when the member starts
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != membership.DefaultCluster || cfg.GossipInterval != time.Hour || cfg.RemoteConfig.MaxRetryCount != 1 ||
		cfg.RemoteConfig.Host != "127.0.0.1" || cfg.RemoteConfig.Port != 7001 {
		t.Errorf("config: name %q, gossip every %v, %d redials, remote %s:%d", cfg.Name, cfg.GossipInterval,
			cfg.RemoteConfig.MaxRetryCount, cfg.RemoteConfig.Host, cfg.RemoteConfig.Port)
	}
	cfg = membership.Configure(membership.Node{Cluster: "pool", Advertised: "127.0.0.2:7001"}, nil)
	if cfg.Name != "pool" || cfg.RemoteConfig.AdvertisedHost != "127.0.0.2:7001" {
		t.Errorf("config: name %q, advertised %q", cfg.Name, cfg.RemoteConfig.AdvertisedHost)
	}
}
