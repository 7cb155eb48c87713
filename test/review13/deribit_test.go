package review13

import (
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
)

// The Deribit session is not authenticated while there is no connection.
func TestDeribitNotAuthenticatedWhileDisconnected(t *testing.T) {
	v := newVenue(t, false)
	s, err := deribit.NewSession(deribit.Config{ClientID: "cid-1", ClientSecret: "s3cr3t-client-secret-xyz", DisableCancelOnDisconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logs, lg := observedLogger()
	sys := testutil.NewSystem(t)
	ctx := testutil.Context(t, 10*time.Second)
	c, err := actors.Connect(ctx, sys, v.url, append(baseOpts(actors.WithLogger(lg)), s.Options()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !s.Authenticated() || s.Expires().Before(time.Now().Add(10*time.Minute)) {
		t.Fatalf("after connect: auth %v expires %v", s.Authenticated(), s.Expires())
	}
	if err := c.Subscribe(ctx, "user.orders.BTC-PERPETUAL.raw", "book.BTC-PERPETUAL.100ms"); err != nil {
		t.Fatal(err)
	}
	v.down.Store(true)
	v.dropAll()
	deadline := time.Now().Add(1500 * time.Millisecond)
	bad := 0
	samples := 0
	for time.Now().Before(deadline) {
		st1 := c.State()
		a, e := s.Authenticated(), s.Expires()
		st2 := c.State()
		if st1 != actors.StateConnected && st2 != actors.StateConnected {
			samples++
			if a || !e.IsZero() {
				bad++
			}
		}
		time.Sleep(time.Millisecond)
	}
	if samples == 0 {
		t.Fatal("never saw the client disconnected")
	}
	if bad > 0 {
		t.Errorf("authenticated (or Expires set) in %d of %d samples without a connection", bad, samples)
	}
	v.down.Store(false)
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Authenticated() {
		t.Error("not authenticated after reconnect")
	}
	if st := s.Stats(); st.Auths != 2 {
		t.Errorf("Auths %d, want 2", st.Auths)
	}
	// private channel restored after auth: it came after public/auth on the new connection
	fr := v.allFrames()
	lastAuth, lastPriv := -1, -1
	for i, f := range fr {
		if strings.Contains(string(f.data), `"public/auth"`) {
			lastAuth = i
		}
		if strings.Contains(string(f.data), `"private/subscribe"`) {
			lastPriv = i
		}
	}
	if lastPriv < lastAuth {
		t.Errorf("private/subscribe (#%d) not after the last public/auth (#%d)", lastPriv, lastAuth)
	}
	for _, l := range logs.All() {
		all := l.Message + " " + strings.ReplaceAll(strings.Join(fieldsOf(l.ContextMap()), " "), "\n", " ")
		for _, sec := range []string{"s3cr3t-client-secret-xyz", "acc0123456789TOKENabcdefXYZ", "ref0123456789TOKENabcdefXYZ"} {
			if strings.Contains(all, sec) {
				t.Errorf("secret %s in log %q", sec, all)
			}
		}
	}
	for _, sec := range []string{"s3cr3t-client-secret-xyz", "acc0123456789TOKENabcdefXYZ"} {
		if strings.Contains(strings.ReplaceAll(fmtAny(c.Health()), "\n", ""), sec) {
			t.Errorf("secret in Health")
		}
	}
}
