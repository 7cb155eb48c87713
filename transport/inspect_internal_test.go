package transport

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkInspectorScan is the inspector's own cost: one pass over 64 KiB
// of size-byte frames, per byte.
func BenchmarkInspectorScan(b *testing.B) {
	for _, size := range []int{16, 64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			frame := append([]byte{0x82, byte(size)}, make([]byte, size)...)
			if size >= 126 {
				frame = append([]byte{0x82, 126, byte(size >> 8), byte(size)}, make([]byte, size)...)
			}
			buf := bytes.Repeat(frame, 64<<10/len(frame))
			in := newInspector(nil, func() {}, Options{}.withDefaults())
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := in.scan(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The parse is the same however the stream is cut into reads.
func TestInspectorScanAnySplit(t *testing.T) {
	var stream []byte
	frame := func(b0 byte, payload int) {
		switch {
		case payload < 126:
			stream = append(stream, b0, byte(payload))
		case payload <= 0xFFFF:
			stream = append(stream, b0, 126, byte(payload>>8), byte(payload))
		default:
			stream = append(stream, b0, 127, 0, 0, 0, 0, byte(payload>>24), byte(payload>>16), byte(payload>>8), byte(payload))
		}
		stream = append(stream, make([]byte, payload)...)
	}
	frame(0x81, 5)       // text
	frame(0x01, 0)       // first fragment
	frame(0x89, 3)       // ping between fragments
	frame(0x00, 200)     // continuation
	frame(0x80, 70000)   // final continuation, 64-bit length
	frame(0x82, 125)     // binary
	frame(0x8A, 0)       // pong
	frame(0x82, 0x10000) // 64-bit length
	for cut := 1; cut < 40; cut++ {
		in := newInspector(nil, func() {}, Options{MaxFragments: 3}.withDefaults())
		for i := 0; i < len(stream); i += cut {
			if _, err := in.scan(stream[i:min(i+cut, len(stream))]); err != nil {
				t.Fatalf("cut %d at %d: %v", cut, i, err)
			}
		}
		if in.busy() {
			t.Fatalf("cut %d: the stream ended mid-message by the inspector's count", cut)
		}
	}
	in := newInspector(nil, func() {}, Options{MaxFragments: 2}.withDefaults())
	if _, err := in.scan(stream); err == nil || err.Code != 1008 {
		t.Fatalf("3 fragments with MaxFragments 2: %v", err)
	}
}
