// Package pidname renders an actor PID as one readable string for logs and
// error texts: its id (`$1/client-3`) for a PID of this process, and
// "address/id" for one on another member (`10.0.0.7:8090/$1/client-3`).
// Proto.Actor's own String is the protobuf text form
// (`Address:"nonhost" Id:"$1"`), which is hard to read and to grep.
package pidname

import (
	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// local is the address Proto.Actor gives PIDs of a system without remoting.
const local = "nonhost"

// String returns the PID's id, or "address/id" when the PID carries a
// remote address; "<nil>" for a nil PID.
func String(pid *actor.PID) string {
	switch {
	case pid == nil:
		return "<nil>"
	case pid.Address == "" || pid.Address == local:
		return pid.Id
	}
	return pid.Address + "/" + pid.Id
}

// Field is a zap field holding String(pid).
func Field(key string, pid *actor.PID) zap.Field { return zap.String(key, String(pid)) }
