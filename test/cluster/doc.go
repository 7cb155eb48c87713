// Package cluster runs zenws's balancer pool across real processes: three
// nodes, each an OS process of this test binary (TestMain runs the node
// main when ZENWS_CLUSTER_NODE is set), found through a real membership
// provider (an etcd server the tests start on 127.0.0.1, or Proto.Actor's
// automanaged provider), each with its own clients against a venue that
// the test process serves on 127.0.0.1 and that counts every order and
// every connection attempt.
//
// Each node serves a small HTTP control API on 127.0.0.1 (node.go): the
// test reads its pool and counters and starts its traffic there, and
// kills, stops (SIGSTOP) and restarts the processes itself.
package cluster
