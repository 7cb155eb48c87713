package actors

import "time"

// minMessageTimeout is the shortest message timeout WithMessageLimits accepts.
const minMessageTimeout = 10 * time.Millisecond

// WithMessageLimits bounds one inbound message (or control frame) still
// being received: timeout from its first byte to its last (default 30 s,
// transport.DefaultMessageTimeout; else at least 10 ms) and maxFragments,
// the frames it may come in (default 4096, transport.DefaultMaxFragments;
// not negative); 0 keeps a default. A frame header followed by silence, a
// message whose final frame never comes, or one in more frames (such as an
// endless stream of empty continuation frames) fails the connection with a
// *transport.ProtocolError (close 1008), even with the heartbeat off, and
// the client reconnects. The message's size is WithReadLimit's.
func WithMessageLimits(timeout time.Duration, maxFragments int) Option {
	return func(c *Config) { c.MessageTimeout, c.MaxFragments = timeout, maxFragments }
}
