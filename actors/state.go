package actors

import "strconv"

// State is where a client is in its connection life cycle.
type State int

// The client states. A client starts in StateConnecting, is StateConnected
// while it has a working connection, StateReconnecting between a lost
// connection and the next working one, and StateDisconnected once it has
// stopped (Close, a fatal error, or giving up).
const (
	StateDisconnected State = iota
	StateConnecting
	StateConnected
	StateReconnecting
)

// String returns the name used in logs.
func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "disconnected"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// HeartbeatType selects how a client proves its connection is alive.
type HeartbeatType int

// Heartbeat kinds.
//
//   - HeartbeatDisabled: none; the original's default, here an explicit
//     choice: WithHeartbeat(HeartbeatDisabled, 0).
//   - HeartbeatPingPong (the default, every 30 s, 2 misses): a WebSocket ping with a unique payload every
//     interval; its pong gives the round-trip time. After HeartbeatMisses pings
//     in a row go unanswered within an interval, the client reconnects, so a
//     half-open connection is found within about HeartbeatMisses intervals.
//   - HeartbeatDeribit: answers the server's test_request at once with
//     public/test and sends public/test every interval; both carry ids the
//     client tracks, so their replies are consumed and never reach the
//     handler. Unanswered ones count as misses, as for ping/pong.
//   - HeartbeatBinance: the server pings (Binance: every 20 s) and
//     coder/websocket answers with the same payload. The client watches those
//     pings and reconnects when none arrives for longer than the server-ping
//     window (Config.ServerPingWindow, default 3 intervals).
const (
	HeartbeatDisabled HeartbeatType = iota
	HeartbeatPingPong
	HeartbeatDeribit
	HeartbeatBinance
	// HeartbeatText is the venue's text heartbeat (venue.TextPinger, such
	// as OKX's "ping"/"pong"): the client sends the venue's ping every
	// interval and counts an interval without its pong as a miss. A
	// client whose venue has one uses it unless WithHeartbeat says
	// otherwise.
	HeartbeatText
)

// String returns the name used in logs.
func (h HeartbeatType) String() string {
	switch h {
	case HeartbeatDisabled:
		return "disabled"
	case HeartbeatPingPong:
		return "ping_pong"
	case HeartbeatDeribit:
		return "deribit"
	case HeartbeatBinance:
		return "binance"
	case HeartbeatText:
		return "text"
	}
	return "HeartbeatType(" + strconv.Itoa(int(h)) + ")"
}
