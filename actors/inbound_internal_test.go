package actors

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The byte bound applies like the count bound, under both policies; a
// message larger than the bound is queued only when no other waits.
func TestDeliveryQueueByteBound(t *testing.T) {
	for _, policy := range []OverflowPolicy{DropNewest, DropOldest} {
		var mu sync.Mutex
		var got []uint64
		block := make(chan struct{})
		q := newDeliveryQueue(100, policy, func(m *Inbound) {
			<-block
			mu.Lock()
			got = append(got, m.Seq)
			mu.Unlock()
		}, zap.NewNop())
		q.byteLimit = 100
		msg := func(n int) *Inbound { return &Inbound{Data: bytes.Repeat([]byte("x"), n)} }
		q.push(msg(1)) // Seq 1: taken by the worker, blocks it
		for q.pending() != 0 {
			time.Sleep(time.Millisecond)
		}
		for i := 0; i < 5; i++ { // Seq 2..6, 40 bytes each: two fit
			q.push(msg(40))
		}
		if q.pendingBytes() != 80 || q.pending() != 2 || q.dropped.Load() != 3 {
			t.Fatalf("%v: %d queued, %d bytes, %d dropped", policy, q.pending(), q.pendingBytes(), q.dropped.Load())
		}
		q.push(msg(500)) // Seq 7: larger than the bound
		wantQueued, wantDropped := 2, uint64(4)
		if policy == DropOldest {
			wantQueued, wantDropped = 1, 5 // it evicts both and waits alone
		}
		if q.pending() != wantQueued || q.dropped.Load() != wantDropped {
			t.Fatalf("%v: after an oversized message %d queued, %d dropped", policy, q.pending(), q.dropped.Load())
		}
		close(block)
		q.wg.Wait()
		want := []uint64{1, 2, 3}
		if policy == DropOldest {
			want = []uint64{1, 7}
		}
		if len(got) != len(want) || got[len(got)-1] != want[len(want)-1] {
			t.Fatalf("%v: delivered %v, want %v", policy, got, want)
		}
		if q.pendingBytes() != 0 {
			t.Fatalf("%v: %d bytes left", policy, q.pendingBytes())
		}
	}
}
