package wstest

import (
	"context"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// MaxConnAgeReason is the close reason used when a connection reaches the
// age set by WithMaxConnAge (close code 1001, going away).
const MaxConnAgeReason = "max connection age reached"

// ageLoop closes the connection d after it was accepted (WithMaxConnAge).
func (c *Conn) ageLoop(d time.Duration) {
	defer c.wg.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
	case <-t.C:
		_ = c.Disconnect(websocket.StatusGoingAway, MaxConnAgeReason)
	}
}

// SendServerShutdown sends Binance's maintenance announcement
//
//	{"event":{"e":"serverShutdown","E":<Unix ms>}}
//
// as a text message, after which a client is expected to move to a new
// connection. The connection stays open (see Send for the write's bounds);
// close it with Disconnect or WithMaxConnAge.
func (c *Conn) SendServerShutdown(ctx context.Context) error {
	b := []byte(`{"event":{"e":"serverShutdown","E":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `}}`)
	return c.write(ctx, websocket.MessageText, b)
}
