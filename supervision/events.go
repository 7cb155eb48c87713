package supervision

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Events are published on the actor system's event stream
// (sys.EventStream.Subscribe). The event stream calls subscribers on the
// publisher's goroutine, here the supervisor's or a client's: a subscriber
// must be quick and must not block, or it delays supervision and delivery.
// Hand work off to a goroutine or an actor.

// ClientConnected: a supervised client has a working connection: the first,
// after a reconnect, or after a restart.
type ClientConnected struct {
	Supervisor *actor.PID
	Client     *actor.PID
	Generation uint64 // the connection generation (see actors.Inbound)
}

// ClientRestarted: a client failed (a crash, or its reconnect attempts were
// spent) and was restarted with the same PID.
type ClientRestarted struct {
	Supervisor *actor.PID
	Client     *actor.PID
	Reason     any // the failure, usually an *actors.GiveUpError
	Restarts   int // restarts of this client within the budget window, this one included
	Within     time.Duration
}

// ClientGaveUp: a client failed with its restart budget spent; it is
// stopped for good.
type ClientGaveUp struct {
	Supervisor *actor.PID
	Client     *actor.PID
	Reason     any
	Restarts   int // restarts within the window before this failure
	Within     time.Duration
}

// ClientDisconnected: a client stopped for good, for any reason (Close,
// StopClient, a fatal error, a spent budget, the supervisor stopping); it
// is no longer listed.
type ClientDisconnected struct {
	Supervisor *actor.PID
	Client     *actor.PID
	Reason     error // the client's last error; nil after a clean close
}

// SupervisorGaveUp: with WithSupervisorIntensity, too many restarts across
// all clients: the supervisor stopped them all and escalated.
type SupervisorGaveUp struct {
	Supervisor *actor.PID
	Restarts   int
	Within     time.Duration
	Reason     any // the failure that crossed the limit
}
