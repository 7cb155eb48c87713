package actors

import "time"

// minMessageTimeout is the shortest WithMessageTimeout accepted.
const minMessageTimeout = 10 * time.Millisecond

// WithMessageTimeout bounds how long one inbound message (or control frame)
// may take from its first byte to its last. Default
// 30 s (transport.DefaultMessageTimeout), also for 0; else at least 10 ms. A
// frame header followed by silence, or a message whose final frame never
// comes, fails the connection with a *transport.ProtocolError (close 1008)
// once it has been incomplete this long, even with the heartbeat off, and
// the client reconnects.
func WithMessageTimeout(d time.Duration) Option { return func(c *Config) { c.MessageTimeout = d } }

// WithMaxFragments bounds the frames of one inbound message. Default
// 4096 (transport.DefaultMaxFragments), also for 0; not negative. A message in more frames (such as
// an endless stream of empty continuation frames) fails the connection
// with a *transport.ProtocolError (close 1008) and the client reconnects.
func WithMaxFragments(n int) Option { return func(c *Config) { c.MaxFragments = n } }
