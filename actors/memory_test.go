package actors_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// A handler that never returns cannot make the client hold more than its
// inbound queue: 40 MiB streamed at a stuck handler leave the client's
// memory about where a full queue puts it, and every message past the
// queue is counted as dropped.
func TestBlockingHandlerMemoryIsBounded(t *testing.T) {
	srv := wstest.NewServer(wstest.WithCaptureLimit(1))
	defer srv.Close()
	block := make(chan struct{})
	defer close(block)
	const queue, n, size = 1024, 40_000, 1024
	c := connect(t, newSystem(t), srv.URL(),
		actors.WithInboundQueue(queue, 0, actors.DropNewest), func(c *actors.Config) { c.CloseWait = 200 * time.Millisecond },
		actors.WithHandler(func(actors.Inbound) { <-block }))
	conns, err := srv.WaitConns(ctxT(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	msg := []byte(strings.Repeat("x", size))
	ctx := ctxT(t, 60*time.Second)
	for i := 0; i < n; i++ {
		if err := conns[0].Send(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "every message read", func() bool { return c.Health().MessagesIn >= n })
	grew := int64(heap()) - int64(before)
	h := c.Health()
	t.Logf("%d MiB streamed at a stuck handler: heap grew %.1f MiB (queue %d x %d B = %.1f MiB), %d queued, %d dropped",
		n*size>>20, float64(grew)/(1<<20), queue, size, float64(queue*size)/(1<<20), h.InboundQueued, h.InboundDropped)
	if h.InboundQueued > queue || h.InboundDropped < n-queue-1 {
		t.Fatalf("queued %d, dropped %d: the queue is not bounded at %d", h.InboundQueued, h.InboundDropped, queue)
	}
	if limit := int64(4 * queue * size); grew > limit {
		t.Fatalf("heap grew %d bytes with a stuck handler; a queue of %d messages of %d B bounds it near %d", grew, queue, size, queue*size)
	}
	_ = c.Close() // ErrTimeout: the handler is stuck
}
