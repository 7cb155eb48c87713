package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/lxzan/gws"
)

// dialGws: an lxzan/gws client connection (default options: 4 KiB read
// buffer, no compression, messages handled on the read loop) whose
// ReadLoop runs in one goroutine. gws reuses message buffers (hence a
// borrowed pending table); WriteMessage is safe for concurrent use.
func dialGws(ctx context.Context, url string, onFrame func([]byte), onEnd func()) (wire, error) {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	conn, _, err := gws.NewClient(&gwsHandler{onFrame: onFrame}, &gws.ClientOption{Addr: url, HandshakeTimeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("failed to dial: %w", err)
	}
	go func() {
		defer onEnd()
		conn.ReadLoop()
	}()
	return gwsWire{conn}, nil
}

type gwsHandler struct {
	gws.BuiltinEventHandler
	onFrame func([]byte)
}

// OnMessage implements gws.Event.
func (h *gwsHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	h.onFrame(m.Bytes())
	_ = m.Close()
}

type gwsWire struct{ conn *gws.Conn }

func (w gwsWire) write(ctx context.Context, data []byte) error {
	if err := w.conn.SetWriteDeadline(deadlineOf(ctx)); err != nil {
		return err
	}
	return w.conn.WriteMessage(gws.OpcodeText, data)
}

func (w gwsWire) closeNow() { _ = w.conn.NetConn().Close() }
