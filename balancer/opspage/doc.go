// Package opspage is an operator's page for zenws pools: an http.Handler,
// in the spirit of Go's expvar and zpages, that shows every client of one
// or more balancers (a name for each), the clients other nodes hold
// included (balancer/cluster puts them in the table).
//
// Mounted at a path that ends in a slash (say /zenws/), it serves:
//
//   - /zenws/: an HTML page (html/template, no JavaScript, no external
//     asset; a meta refresh with WithAutoRefresh, off by default). Per pool:
//     its strategy and counters, the clients by state and by venue label,
//     and a table of clients: node ("local", or the address of the node
//     that holds it), venue label, state, why it is not picked (NotPicked),
//     round trips (p50, p99, last), balanced operations in flight, pending
//     requests, channels by state, the last error (redacted by the client).
//     At most 100 rows a pool (?limit=, up to 1,000; ?offset= pages on),
//     with the count of all. ?pool=<name> shows one pool.
//   - ?pool=<name>&client=<id>: one client in detail, with its channel
//     list (at most 1,000 channels, with the count of all).
//   - the same document as JSON, for Accept: application/json (without
//     text/html) or ?format=json: the types Page, Pool, Client and Channel,
//     schema "zenws.opspage/v1" (the document's "schema" field). Field names
//     are stable; fields may be added; durations are integer nanoseconds
//     (rtt_p50_ns), times RFC 3339 or null.
//   - /zenws/readyz: readiness for Kubernetes probes: 200 when every
//     required venue label (those WithReadiness names, or every label seen
//     when it names none) has at least N healthy clients (default 1), 503
//     otherwise, with a JSON body (Readiness) whose "short" lists the
//     labels below N. It counts this node's own clients (those of other
//     nodes of a cluster pool too with WithPoolReadiness). Healthy: connected, heartbeat answered, every wanted
//     channel active (NotPicked ""). A label named in WithReadiness counts
//     even when none of its clients is left; with no client and no label
//     required it is not ready ("no clients").
//   - /zenws/livez: liveness: 200 when every balancer's router answers
//     (Balancer.Refresh) within WithLivenessWait (default 2 s) and every
//     WithLivenessCheck passes, 503 naming the pools and checks that did
//     not. Venues being down never fails it.
//
// Whatever labels, channel names, pool names and venues' errors hold, the
// page stays whole: html/template escapes them, and each is clipped (256
// bytes; errors 1,024) with control characters and invalid UTF-8 written
// as \uXXXX, the same text in HTML and JSON.
//
// A request reads the balancers' published tables (Balancer.PoolHealth),
// no message to any client; the channel statuses of the rows shown are
// read from the local clients' published state (actors.Client.Health),
// so its cost grows with the pool for the counts and with the page for the
// rows. A client of another node (balancer/cluster) shows what its node
// last sent: its label, endpoint, last error and channels counted by state
// too; the list of its channels is on that node's page.
package opspage
