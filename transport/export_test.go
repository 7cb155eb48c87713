package transport

// NetWrites is how many writes c made to its network connection.
func NetWrites(c *Conn) int64 { return c.raw.writes.Load() }

// Queued is how many writes wait behind the one in flight on c.
func Queued(c *Conn) int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.queue)
}

// Combined is how many messages left c in a batch with others.
func Combined(c *Conn) int64 { return c.combined.Load() }
