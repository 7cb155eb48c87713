// Package chaos is zenws's chaos suite: a supervisor with ten clients, each
// talking to its own simulated Deribit venue (transport/wstest) through its
// own Toxiproxy proxy, embedded in-process as a Go library. While a balancer
// makes retry-safe calls, sends and non-retry-safe orders from many
// goroutines, the suite injects real network faults (resets, latency and
// jitter, bandwidth limits, half-open connections, sliced TCP segments),
// restarts venues on the same port and refuses handshakes, then checks the
// library's promises: no call hangs, no panic escapes, subscriptions come
// back, no order is executed twice, and nothing is left running.
//
// It is a module of its own so that Toxiproxy's dependencies stay out of
// the library's go.mod. Run it with
//
//	cd test/chaos && go test -race -short ./...    # about 10 s of chaos (CI)
//	cd test/chaos && go test -race -v ./...        # 60 s, prints the figures
//
// ZENWS_CHAOS_DURATION (a Go duration such as 30s) overrides the length of
// the run in either mode, ZENWS_CHAOS_FAULTS (such as reset,restart) runs a
// subset of the faults, ZENWS_CHAOS_LOG (a zap level) logs the clients, and
// ZENWS_CHAOS_REPORT (a path) writes the figures as a Markdown table. See
// docs/reliability.md for what is checked and the figures.
package chaos
