// Package wstest provides an in-process WebSocket server for tests, in the
// spirit of net/http/httptest.
//
// A Server listens on a random port of 127.0.0.1 and speaks real WebSocket
// over real TCP (or TLS, see NewTLSServer), using github.com/coder/websocket
// on the server side. By default it echoes every message back. On top of
// that it can
//
//   - answer JSON-RPC 2.0 requests with per-method responders (WithResponder,
//     Server.Handle), keeping the request id's raw JSON;
//   - mimic a Deribit-like exchange (WithDeribit): public/test, heartbeats
//     with test_request and timeout (WithDeribitHeartbeat,
//     public/set_heartbeat), subscriptions with Server.Publish or a periodic
//     ticker with server-wide channel_seq numbers (WithDeribitTicker),
//     public/auth with real credential checks (WithDeribitCredentials:
//     client_credentials, HMAC client_signature, refresh_token), expiring
//     tokens (WithDeribitTokenTTL), private methods that need auth
//     (private/get_account_summary, private/buy and private/sell, counted by
//     Server.Orders), and the venue's rate limits (WithDeribitCredits:
//     credits per sub-account, a separate matching-engine bucket, error
//     10028 and a closed connection when exhausted);
//   - mimic a subset of the OKX v5 WebSocket API (WithOKX): text
//     "ping"/"pong", a 4004 close after silence (WithOKXIdle), HMAC logins
//     (WithOKXCredentials, OKXSign), public and private subscriptions with
//     OKX's events and error codes, data pushes with Server.PublishOKX, and
//     a per-connection request limit (WithOKXRequestLimit);
//   - play Binance's connection-rotation cues: close every connection after
//     a maximum age (WithMaxConnAge) and announce maintenance
//     (Conn.SendServerShutdown);
//   - send WebSocket pings (WithServerPings) and count pings and pongs;
//   - inject messages (Conn.Send, Server.Broadcast) and record everything it
//     receives (Conn.Received, Conn.WaitReceived);
//   - misbehave on demand: close with a given code (Conn.Disconnect,
//     Server.DisconnectAll), drop the TCP connection without a close frame
//     (Conn.Drop, Server.DropAll), stop reading to simulate a half-open
//     connection (Conn.Stall, Conn.Resume), refuse upgrades with an HTTP
//     status (Server.RefuseHandshakes).
//
// Blackhole is a listener that accepts TCP connections and never answers,
// for handshake-timeout tests.
//
// Every wait takes a context. Close closes all connections abruptly and
// returns only when every goroutine the server started has ended, so the
// package can be used together with go.uber.org/goleak.
//
// A typical test:
//
//	srv := wstest.NewServer(wstest.WithDeribit())
//	defer srv.Close()
//	client := mylib.Dial(srv.URL())
//	conns, err := srv.WaitConns(ctx, 1)
//	...
//	srv.DropAll() // the client should reconnect
//	err = srv.WaitTotalConns(ctx, 2)
package wstest
