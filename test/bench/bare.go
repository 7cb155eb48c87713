package bench

import (
	"context"
	"fmt"

	"github.com/coder/websocket"
)

// dialBare: a coder/websocket connection with one reader goroutine, the
// baseline. Write is safe for concurrent use.
func dialBare(ctx context.Context, url string, onFrame func([]byte), onEnd func()) (wire, error) {
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to dial: %w", err)
	}
	go func() {
		defer onEnd()
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			onFrame(data)
		}
	}()
	return bareWire{conn}, nil
}

type bareWire struct{ conn *websocket.Conn }

func (w bareWire) write(ctx context.Context, data []byte) error {
	return w.conn.Write(ctx, websocket.MessageText, data)
}

func (w bareWire) closeNow() { _ = w.conn.CloseNow() }
