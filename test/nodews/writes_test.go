package nodews

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// Writes that queue behind one in flight leave together in one write to
// the network (issue 14). ws, an implementation we did not write, parses
// the combined stream: every message comes back whole, once, and each
// writer's messages in its order, of every frame-length class.
func TestCombinedWritesWithNodeWS(t *testing.T) {
	url := venue(t)
	c, err := transport.Dial(ctx(t), url, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	const writers, each = 32, 60
	echoes := make(chan []byte, writers*each)
	go func() {
		for {
			_, data, err := c.Read()
			if err != nil {
				close(echoes)
				return
			}
			echoes <- data
		}
	}()
	// Frames of 7-bit, 16-bit and 64-bit lengths share batches.
	testutil.WriteSeq(t, writers, each, func(msg []byte) error {
		return c.Write(context.Background(), transport.MessageText, msg)
	})
	order := testutil.NewSeqOrder(writers)
	for n := 0; n < writers*each; n++ {
		var data []byte
		select {
		case data = <-echoes:
		case <-ctx(t).Done():
			t.Fatalf("%d of %d echoes came back", n, writers*each)
		}
		order.Saw(t, data)
	}
}

// 64 callers at once on one client: every Call gets its own answer back
// from ws (the requests left in combined writes, the answers matched by
// id on the reader).
func TestConcurrentCallsWithNodeWS(t *testing.T) {
	c, _ := connect(t, venue(t))
	const callers, each = 64, 50
	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				want := map[string]int{"g": g, "i": i}
				res, err := c.Call(ctx(t), "echo", want)
				if err != nil {
					t.Error(err)
					return
				}
				var got map[string]int
				if err := json.Unmarshal(res, &got); err != nil || got["g"] != g || got["i"] != i {
					t.Errorf("caller %d call %d got %s", g, i, res)
					return
				}
			}
		}()
	}
	wg.Wait()
}
