package bench

import (
	"context"
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
)

// dialGorilla: a gorilla/websocket connection (default dialer, 4 KiB read
// and write buffers) with one reader goroutine. gorilla allows one writer
// at a time, so writes take a mutex.
func dialGorilla(ctx context.Context, url string, onFrame func([]byte), onEnd func()) (wire, error) {
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to dial: %w", err)
	}
	go func() {
		defer onEnd()
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			onFrame(data)
		}
	}()
	return &gorillaWire{conn: conn}, nil
}

type gorillaWire struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

func (w *gorillaWire) write(ctx context.Context, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.conn.SetWriteDeadline(deadlineOf(ctx)); err != nil {
		return err
	}
	return w.conn.WriteMessage(websocket.TextMessage, data)
}

func (w *gorillaWire) closeNow() { _ = w.conn.Close() }
