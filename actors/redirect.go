package actors

// WithFollowRedirects lets the handshake follow up to max 3xx answers
// (at most 10, transport.MaxFollowRedirects; more is a *ConfigError, where
// transport.Options clamps). Default 0: a redirect fails
// the dial with a *transport.RedirectError naming the status and the
// redacted Location, which is fatal (the client does not retry it).
//
// A followed redirect never goes from wss to ws and stays on the URL's
// origin (scheme, host and port) unless its host is one of allowHosts
// (host name, or host:port). A request to another origin carries none of
// the client's credentials: its headers (WithHeaders), Authorization,
// Cookie, its subprotocols and Referer are removed.
func WithFollowRedirects(max int, allowHosts ...string) Option {
	return func(c *Config) {
		c.FollowRedirects = max
		c.RedirectHosts = append([]string(nil), allowHosts...)
	}
}
