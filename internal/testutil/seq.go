package testutil

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// SeqMessage is message i of writer w for the concurrent-write tests:
// "w:i:" and a padding of x whose length puts the frames in every length
// class (7-bit mostly, a 16-bit one in three, a 64-bit one in twenty).
func SeqMessage(w, i int) []byte {
	size := 5
	switch {
	case i%20 == 0:
		size = 70000
	case i%3 == 0:
		size = 300
	}
	return []byte(fmt.Sprintf("%d:%d:%s", w, i, strings.Repeat("x", size)))
}

// SeqOrder checks SeqMessages as they arrive: each whole, and each
// writer's in the order it wrote them.
type SeqOrder struct {
	next []int
}

// NewSeqOrder checks the messages of writers writers.
func NewSeqOrder(writers int) *SeqOrder { return &SeqOrder{next: make([]int, writers)} }

// Saw checks one message.
func (s *SeqOrder) Saw(t testing.TB, data []byte) {
	t.Helper()
	parts := strings.SplitN(string(data), ":", 3)
	if len(parts) != 3 || strings.Trim(parts[2], "x") != "" {
		t.Fatalf("a mangled message: %.60q", data)
	}
	w, err1 := strconv.Atoi(parts[0])
	i, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || w < 0 || w >= len(s.next) {
		t.Fatalf("a mangled message: %.60q", data)
	}
	if i != s.next[w] {
		t.Fatalf("writer %d: message %d arrived when %d was next", w, i, s.next[w])
	}
	s.next[w]++
}

// Complete fails t unless every writer's each messages arrived.
func (s *SeqOrder) Complete(t testing.TB, each int) {
	t.Helper()
	for w, n := range s.next {
		if n != each {
			t.Fatalf("writer %d: %d of %d messages arrived", w, n, each)
		}
	}
}

// WriteSeq runs writers goroutines at once, each writing its each
// SeqMessages in order with write, and waits for them.
func WriteSeq(t testing.TB, writers, each int, write func([]byte) error) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := write(SeqMessage(w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
