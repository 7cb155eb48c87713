package actors

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// maxLabelLen bounds a label: it is on every log line of the client.
const maxLabelLen = 64

// WithLabel names the client for operators: the label is in Health.Label
// and in a "label" field on each of the client's log lines (the client's
// PID is in a "client" field either way), for example "deribit-md-1".
// Default "" (no label). At most 64 bytes of printable UTF-8 text (no
// control characters, which would let a label forge log lines).
func WithLabel(label string) Option { return func(c *Config) { c.Label = label } }

func (cfg Config) validateLabel(bad func(field, problem string)) {
	switch {
	case len(cfg.Label) > maxLabelLen:
		bad("Label", fmt.Sprintf("must be at most %d bytes, got %d", maxLabelLen, len(cfg.Label)))
	case !utf8.ValidString(cfg.Label):
		bad("Label", "must be valid UTF-8")
	default:
		for _, r := range cfg.Label {
			if !unicode.IsPrint(r) {
				bad("Label", fmt.Sprintf("must be printable text, got %q", r))
				return
			}
		}
	}
}
