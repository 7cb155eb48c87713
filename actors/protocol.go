package actors

import "time"

// MinMessageTimeout is the shortest WithMessageTimeout accepted: 10 ms.
const MinMessageTimeout = 10 * time.Millisecond

// WithMessageTimeout bounds how long one inbound message (or control frame)
// may take from its first byte to its last. Default
// transport.DefaultMessageTimeout (30 s); at least MinMessageTimeout. A
// frame header followed by silence, or a message whose final frame never
// comes, fails the connection with a *transport.ProtocolError (close 1008)
// once it has been incomplete this long, even with the heartbeat off, and
// the client reconnects.
func WithMessageTimeout(d time.Duration) Option { return func(c *Config) { c.MessageTimeout = d } }

// WithMaxFragments bounds the frames of one inbound message. Default
// transport.DefaultMaxFragments (4096). A message in more frames (such as
// an endless stream of empty continuation frames) fails the connection
// with a *transport.ProtocolError (close 1008) and the client reconnects.
func WithMaxFragments(n int) Option { return func(c *Config) { c.MaxFragments = n } }
