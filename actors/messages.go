package actors

import (
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors/jsonrpc"

	"github.com/zenws/zenws/transport"
)

// Messages the client actor sends itself. Each carries what it needs to be
// recognised as stale: a message from an earlier connection (gen) or an
// earlier actor instance (owner) is ignored.

type dialResult struct {
	owner *clientActor
	conn  *transport.Conn
	pings *serverPings // the server's pings on this connection
	err   error
}

type frameMsg struct {
	gen    uint64
	typ    websocket.MessageType
	data   []byte
	at     time.Time
	env    jsonrpc.Envelope // text frames: the peeked envelope
	isJSON bool
	gate   *frameGate // the reader's bound on frames in flight (gate.go)
}

// String keeps a frame's bytes out of every rendering (Proto.Actor's dead
// letter log prints the message): they may hold a venue's tokens.
func (m *frameMsg) String() string {
	return fmt.Sprintf("zenws frame (generation %d, %d bytes)", m.gen, len(m.data))
}

// GoString is String, for %#v.
func (m *frameMsg) GoString() string { return m.String() }

type connLost struct {
	gen uint64
	err error
}

type redial struct {
	owner *clientActor
	seq   uint64 // only the latest scheduled retry counts
}

type hbTick struct{ gen uint64 }

type pingResult struct {
	gen uint64
	rtt time.Duration
	err error
}

// reconnectReq asks for a fresh connection now; reply gets nil once
// connected, or why not.
type reconnectReq struct{ reply chan error }

// setupDone reports the connect pipeline of connection gen: the connect
// hooks (hookErr fails the attempt) and then the subscription restore
// (failed are the channels the venue refused, restoreErr the first cause:
// reported, retried with backoff, the connection kept).
type setupDone struct {
	gen        uint64
	hookErr    error
	failed     []string
	restoreErr error
}
