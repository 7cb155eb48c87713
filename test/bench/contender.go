package bench

import (
	"context"
	"time"
)

// RetryDelay is the backoff base given to the contenders that reconnect by
// themselves: zenws (actors.WithRetryDelay: after a stable connection its
// first redial goes out at once, each further attempt k waits a uniform
// random time in [0, RetryDelay*2^(k-1)]) and recws (RecIntvlMin: the wait
// after a failed attempt). The goals for zenws: a median reconnect at most
// 2x bare coder/websocket's redial, and every one within RetryDelay + 50 ms.
const RetryDelay = 100 * time.Millisecond

// StableAfter is zenws's actors.Config.StableAfter in the bench (the default
// is 10 s): the reconnect workload keeps each connection up a little longer
// than this before it drops it, for every contender alike, so that the row
// measures the redial after a stable connection, the case the revised
// backoff makes cost a dial and no wait.
const StableAfter = 100 * time.Millisecond

// Conn is one client connection of a contender, wired for the workloads.
type Conn interface {
	// Send writes data as one text message.
	Send(ctx context.Context, data []byte) error
	// Call sends a JSON-RPC request with a fresh id and waits for the
	// response carrying that id.
	Call(ctx context.Context) error
	// Lost is closed once the connection has ended by itself, for a
	// contender that does not reconnect; it is nil for one that does.
	Lost() <-chan struct{}
	// Close closes the connection and returns once every goroutine it
	// started has ended, or with an error after a few seconds.
	Close() error
}

// readyWaiter is a Conn whose library says when it is connected again
// (zenws: Client.WaitConnected): the reconnect workload waits on it instead
// of polling, as a user of that library would.
type readyWaiter interface {
	WaitReady(ctx context.Context) error
}

// Library is a contender's client side together with what its connections
// share (zenws: an actor system).
type Library interface {
	// Dial opens one connection to url and returns once it is usable. recv
	// is called for every message that is not the response to a Call (the
	// echoes), on whichever goroutine the library delivers messages.
	Dial(ctx context.Context, url string, recv func()) (Conn, error)
	// Close releases what the connections shared; they are closed first.
	Close()
}

// Contender is one entry of the comparison: a name and how to start it.
type Contender struct {
	// Name heads the contender's column in the table.
	Name string
	// Reconnects is true when the library reconnects by itself after a
	// drop; otherwise the harness redials as soon as Conn.Lost is closed,
	// and the table says so.
	Reconnects bool
	// Goals is true for the contenders the goals are about (zenws's own).
	Goals bool
	// Pooled is true for a contender whose Conn is a pool of connections
	// (the balancer): the per-idle-connection footprint does not apply.
	Pooled bool
	// Open starts the library; it is called once per workload run and
	// closed after it.
	Open func() (Library, error)
}

// baseline is the name of the contender every ratio is taken against.
const baseline = "bare coder/websocket"

// Contenders is the registry: every contender TestCompare runs, in the
// table's column order. The first one is the baseline of every ratio.
var Contenders = []Contender{
	{Name: baseline, Open: openPlain(dialBare, false)},
	{Name: "zenws", Reconnects: true, Goals: true, Open: openZenws},
	{Name: "zenws balancer (4 conns)", Reconnects: true, Pooled: true, Open: openBalancer},
	{Name: "gorilla/websocket", Open: openPlain(dialGorilla, false)},
	{Name: "lxzan/gws", Open: openPlain(dialGws, true)},
	{Name: "recws", Reconnects: true, Open: openRecws},
}
