package actors

import (
	"net/url"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zenws/zenws/internal/pidname"
	"github.com/zenws/zenws/internal/redact"
)

// WithSecrets names secret values the client must never show: they are
// replaced by "REDACTED" in every log line, error, StateChange, Health field
// and recording of this client, wherever they appear (values shorter than 6
// bytes are ignored: they would mangle unrelated text). The client already
// knows the secrets in its configuration: header values (but Accept*,
// User-Agent, Origin and the like), the URL's user info, secret-named or
// secret-looking query values and secret-looking path segments (a run of 20
// or more letters and digits holding both, such as a Binance listen key).
// Name here what it cannot guess: an API secret that only appears in frames
// you send, a passphrase. Adapters register the tokens they receive with
// Setup.AddSecrets. Default none.
func WithSecrets(values ...string) Option {
	return func(c *Config) {
		c.Secrets = append(c.Secrets[:len(c.Secrets):len(c.Secrets)], values...)
	}
}

// AddSecrets registers more secret values for the client (see WithSecrets),
// for example a token a connect hook received. They are hidden from then
// on; of the values registered this way the newest are kept, up to
// redact.MaxRecent (256) forms, about 50 values (each takes up to five:
// raw, URL-escaped, Go-quoted, JSON-escaped), so a token refreshed for days
// does not grow the client.
func (s *Setup) AddSecrets(values ...string) { s.d.secrets.Add(values...) }

// AddSecrets registers more secret values for the client (see
// WithSecrets). It does nothing on a handle whose client is not found. Of
// the values registered after the start (here, by connect hooks, by the
// venue) the newest are kept, up to 256 forms, about 50 values (each takes
// up to five: raw, URL-escaped, Go-quoted, JSON-escaped); the configuration's
// are kept for good. Register long-lived values (a session token, again
// when it is refreshed), not one-shot ones such as a per-request
// signature, which would push the token out after about 50 requests.
func (c *Client) AddSecrets(values ...string) {
	if d := c.durable(); d != nil {
		d.secrets.Add(values...)
	}
}

// newScrubber knows the secrets of cfg: header values, the URL's, secret-
// looking subprotocols and those named with WithSecrets. It is sealed:
// tokens registered later are bounded (redact.MaxRecent).
func newScrubber(cfg Config) *redact.Scrubber {
	s := redact.ForRequest(cfg.URL, cfg.Headers, cfg.Subprotocols, cfg.Secrets...)
	s.AddNames(cfg.secretFields...) // the venue's own (venue.Redactor)
	return s
}

// scrubbedLogger is l with every line scrubbed by s: messages, fields and
// the fields added later with With.
func scrubbedLogger(l *zap.Logger, s *redact.Scrubber) *zap.Logger {
	return l.WithOptions(zap.WrapCore(s.Core))
}

// clientLogger is a client's logger: l scrubbed of its secrets, with its
// PID, URL and label (if any) on every line. A no-op l (the default) is
// returned as it is: it writes nothing to scrub or to name, and each
// client would keep its own copies of it.
func clientLogger(l *zap.Logger, s *redact.Scrubber, pid *actor.PID, endpoint, label string) *zap.Logger {
	if l.Core() == zapcore.NewNopCore() {
		return l
	}
	l = scrubbedLogger(l, s).With(pidname.Field("client", pid), zap.String("url", endpoint))
	if label != "" {
		l = l.With(zap.String("label", label))
	}
	return l
}

// scrub returns err with its text free of the client's secrets (errors.Is
// and errors.As still reach the cause).
func (d *durable) scrub(err error) error { return d.secrets.Error(err) }

// endpoint is Health.Endpoint for raw: the URL redacted (redact.URL), its
// known secrets hidden, and a path segment that holds one in any escaping
// ("%2D" for "-") replaced whole.
func endpoint(raw string, s *redact.Scrubber) string {
	ep := s.String(redact.URL(raw))
	u, err := url.Parse(ep)
	if err != nil || u.RawPath == "" && !strings.Contains(u.EscapedPath(), "%") {
		return ep
	}
	segs := strings.Split(u.EscapedPath(), "/")
	changed := false
	for i, seg := range segs {
		if dec, err := url.PathUnescape(seg); err == nil && dec != seg && s.String(dec) != dec {
			segs[i], changed = redact.Mask, true
		}
	}
	if !changed {
		return ep
	}
	p := strings.Join(segs, "/")
	u.Path, u.RawPath = p, p
	return u.String()
}
