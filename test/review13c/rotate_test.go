package review13c

import (
	"testing"
	"time"
)

// PROBABILISTIC (about 1 in 4 rotations here; 20 tries): the new connection
// B answers the restore and closes at once (the close frame right behind
// the answer): the rotation still switches to B in some tries (its
// conn.Err() is read before the reader has taken the close frame), then B's
// loss costs a reconnect and the old connection, alive, is thrown away.
// rotationSetUp's check sees only what B's reader has already processed.
func TestSwitchToConnClosedBehindRestoreAnswer(t *testing.T) {
	switched := 0
	for i := 0; i < 20; i++ {
		pe := newRawPeer(t, func(rc *rawConn) {
			rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
				if rc.idx == 1 && isSub(r) {
					_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"result":["book.a"]}`)
					_ = rc.closeFrame(1001, "going away")
					return true
				}
				return false
			})
		})
		c := dial(t, pe.URL, nil)
		if err := c.Subscribe(ctxT(t, 5*time.Second), "book.a"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rotate(ctxT(t, 10*time.Second)); err == nil {
			switched++
			eventually(t, 5*time.Second, "B's loss seen", func() bool { return c.Health().Reconnects > 0 })
		}
		_ = c.Close()
		pe.close()
	}
	if switched > 0 {
		t.Errorf("%d of 20 rotations switched to a connection whose close frame followed its restore answer (then reconnected, dropping the live old one)", switched)
	}
}
