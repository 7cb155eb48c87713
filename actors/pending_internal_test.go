package actors

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/transport"
)

// parseKey matches exactly the ids jsonrpc.Key matches: the same ids have
// a key, and two ids share one under parseKey iff they do under Key.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{`7`, `07`, `-0`, `0`, `+5`, `5`, `-5`, `"7"`, `"a\u0041"`, `"aA"`,
		`18446744073709551615`, `18446744073709551616`, `-9223372036854775808`, `-9223372036854775809`,
		`9223372036854775808`, `1e2`, `1.0`, `null`, `true`, `[]`, `{}`, `-`, `+`, `""`, `"`, `" `, ``} {
		f.Add([]byte(s), []byte(`7`))
		f.Add([]byte(s), []byte(s))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ka, oka := jsonrpc.Key(a)
		pa, opa := parseKey(a)
		if oka != opa {
			t.Fatalf("%q: jsonrpc.Key ok=%v, parseKey ok=%v", a, oka, opa)
		}
		kb, okb := jsonrpc.Key(b)
		pb, opb := parseKey(b)
		if !oka || !okb || okb != opb {
			return
		}
		if (ka == kb) != (pa == pb) {
			t.Fatalf("%q and %q: jsonrpc.Key same=%v, parseKey same=%v", a, b, ka == kb, pa == pb)
		}
	})
}

// Requests written out of their registration order still expire in
// deadline order, each once, and a late answer to an expired one is
// counted and dropped.
func TestPendingTableExpiresInDeadlineOrder(t *testing.T) {
	tab := newPendingTable()
	conn := &transport.Conn{}
	const n = 50
	calls := make([]*pendingCall, n)
	for i := range calls {
		c, err := tab.register(intKey(uint64(i)), 40*time.Millisecond+time.Duration(i)*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		c.conn.Store(conn)
		calls[i] = c
	}
	if _, err := tab.register(intKey(3), time.Second); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("a second request with id 3: %v, want ErrDuplicateID", err)
	}
	// Written in reverse: the last registered is awaited first.
	for i := n - 1; i >= 0; i-- {
		tab.await(calls[i])
	}
	tab.mu.Lock()
	for c := tab.head; c != nil && c.next != nil; c = c.next {
		if c.next.deadline.Before(c.deadline) {
			t.Error("the deadline list is out of order")
		}
	}
	tab.mu.Unlock()
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case r := <-c.done:
				if !r.expired {
					t.Errorf("call %d: %+v, want expired", i, r)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("call %d never expired", i)
			}
		}()
	}
	wg.Wait()
	tab.mu.Lock()
	head, tail := tab.head, tab.tail
	tab.mu.Unlock()
	if tab.count() != 0 || head != nil || tail != nil {
		t.Fatalf("after expiry: %d pending, head %p tail %p", tab.count(), head, tail)
	}
	if !tab.resolve(intKey(7), conn, []byte(`{"id":7,"result":1}`), nil, jsonrpc.Envelope{}) || tab.late.Load() != 1 {
		t.Fatalf("a late answer to an expired request: late=%d, want it counted", tab.late.Load())
	}
	tab.stop()
}

// A request answered, abandoned or failed leaves the deadline list, so
// the timer only ever sees the ones still waiting.
func TestPendingTableUnlinksEveryWayOut(t *testing.T) {
	tab := newPendingTable()
	conn, other := &transport.Conn{}, &transport.Conn{}
	reg := func(id uint64, on *transport.Conn) *pendingCall {
		c, err := tab.register(intKey(id), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c.conn.Store(on)
		tab.await(c)
		return c
	}
	a, b, c, d := reg(1, conn), reg(2, conn), reg(3, other), reg(4, conn)
	if !tab.resolve(intKey(2), conn, []byte(`{}`), nil, jsonrpc.Envelope{}) {
		t.Fatal("answer to 2 not taken")
	}
	if r := <-b.done; r.resp == nil {
		t.Fatal("2 got no response")
	}
	if !tab.abandon(a, true) {
		t.Fatal("abandon 1")
	}
	tab.failConn(other, errors.New("gone"))
	if r := <-c.done; r.err == nil {
		t.Fatal("3 not failed with its connection")
	}
	if tab.head != d || tab.tail != d || d.prev != nil || d.next != nil {
		t.Fatal("only 4 should be left in the deadline list")
	}
	tab.failAll(errors.New("all"))
	if r := <-d.done; r.err == nil || tab.head != nil || tab.count() != 0 {
		t.Fatal("failAll left a request behind")
	}
	tab.stop()
}
