// Package bench compares zenws with the WebSocket clients a Go trading
// system could use instead, side by side on one machine: bare
// coder/websocket (the baseline of every ratio), the zenws actors.Client,
// gorilla/websocket, lxzan/gws and recws.
//
// Every contender talks to the same coder/websocket server on 127.0.0.1,
// which runs in a separate process (the test binary started again, see
// serverProcess) so that the client side's memory, allocations and
// goroutines are measured without the server's share. The server echoes
// every message, answers every JSON-RPC request {"id":ID,...} with
// {"jsonrpc":"2.0","id":ID,"result":true}, and drops the connection
// without a close frame when it reads dropCommand.
//
// The module has its own go.mod, so the main module does not depend on the
// libraries compared here, and `go test ./...` at the repository root does
// not run it. TestCompare (run with -compare) runs every workload for every
// contender in interleaved rounds and prints one table; TestHarnessSmoke
// runs each contender once on a tiny workload. See docs/performance.md.
package bench
