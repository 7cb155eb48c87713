package cluster

// SetMaxBatchHealth sets the summaries per HealthBatch for a test (the
// test of the batching runs in a process of its own) and returns a func
// that puts it back.
func SetMaxBatchHealth(n int) func() {
	old := maxBatchHealth
	maxBatchHealth = n
	return func() { maxBatchHealth = old }
}
