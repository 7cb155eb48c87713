package actors

// Copies of unexported tuning constants for the package's external tests
// (package actors_test), so they assert against the values in use.
const (
	DefaultRetryCount    = defaultRetryCount
	MinCloseWait         = minCloseWait
	MinHeartbeatInterval = minHeartbeatInterval
	MinMaxConnectionAge  = minMaxConnectionAge
	MinRequestTimeout    = minRequestTimeout
	MinRetryDelay        = minRetryDelay
	MinStableAfter       = minStableAfter
	MinTimeout           = minTimeout
	MinWriteTimeout      = minWriteTimeout
	RecordCloseWait      = recordCloseWait
)
