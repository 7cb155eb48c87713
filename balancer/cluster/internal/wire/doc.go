// Package wire holds the protobuf messages that package cluster's agents
// exchange between nodes (wire.proto). They are internal: the cluster's API
// is the Agent, and these types would otherwise sit beside the actors and
// balancer types they mirror (wire.State beside actors.State).
package wire

//go:generate protoc --go_out=. --go_opt=paths=source_relative wire.proto
