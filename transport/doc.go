// Package transport is one WebSocket client connection over
// github.com/coder/websocket, with the guarantees a trading client needs and
// nothing about actors.
//
// What it adds to coder/websocket:
//
//   - Deadlines of its own. A caller's context never reaches coder/websocket's
//     Read or Write, because when that context expires coder/websocket closes
//     the whole connection: a cancelled request must not kill a shared
//     connection. Writes carry a per-write deadline on the TCP connection
//     (Options.WriteTimeout), so a stalled peer fails the write and the
//     connection instead of freezing the writer.
//   - An explicit read limit, large enough for exchange order-book snapshots
//     (DefaultReadLimit, 16 MiB) instead of coder/websocket's 32 KiB.
//   - RFC 6455 UTF-8 validation: a text message that is not valid UTF-8 fails
//     the connection with close code 1007.
//   - Typed errors: *DialError, *HandshakeError (with the HTTP status),
//     *RedirectError, *ProtocolError,
//     *CloseError (with the peer's close code), *MessageTooBigError, and
//     IsRecoverable, which says whether reconnecting can help.
//   - Checks coder/websocket leaves to the client: a masked server frame or
//     a 64-bit length with its top bit set fails the connection with 1002,
//     and a message that stays incomplete for Options.MessageTimeout or
//     takes more than Options.MaxFragments frames fails it with 1008
//     (*ProtocolError). A frame inspector parses the headers on the
//     plaintext stream (above TLS) as they go by.
//   - Redirects refused by default (*RedirectError); an opt-in that stays
//     on the origin, never downgrades wss and never forwards credentials.
//   - HandshakeTimeout bounds the whole handshake, and dial errors render
//     the URL redacted (user info, query values), net/http's text included.
//   - A bounded Close: the close handshake never takes longer than
//     Options.CloseTimeout; past it the TCP connection is cut.
//
// Exactly one goroutine may call Read at a time, and a reader must be running
// for Ping to complete and for the peer's pings to be answered.
package transport
