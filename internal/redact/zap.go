package redact

import (
	"encoding/json"
	"fmt"

	"go.uber.org/zap/zapcore"
)

// Core wraps c so that every message and field written through it is
// scrubbed by s (String): strings, byte strings, errors (their Error text;
// the cause stays reachable with errors.As), Stringers, and objects, arrays
// and reflected values (rendered as JSON; one that holds a secret is
// replaced by its scrubbed JSON text). c's own Check still decides what is
// written (levels, sampling).
func (s *Scrubber) Core(c zapcore.Core) zapcore.Core { return &scrubCore{Core: c, s: s} }

type scrubCore struct {
	zapcore.Core
	s *Scrubber
}

func (c *scrubCore) With(fields []zapcore.Field) zapcore.Core {
	return &scrubCore{Core: c.Core.With(c.s.fields(fields)), s: c.s}
}

func (c *scrubCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	inner := c.Core.Check(e, nil)
	if inner == nil {
		return ce
	}
	return ce.AddCore(e, &checkedCore{scrubCore: c, inner: inner})
}

func (c *scrubCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = c.s.String(e.Message)
	return c.Core.Write(e, c.s.fields(fields))
}

// checkedCore writes one entry the wrapped core's Check admitted.
type checkedCore struct {
	*scrubCore
	inner *zapcore.CheckedEntry
}

func (c *checkedCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	c.inner.Message = c.s.String(e.Message)
	c.inner.Write(c.s.fields(fields)...)
	return nil
}

// fields returns fs with every value that can carry text scrubbed.
func (s *Scrubber) fields(fs []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	set := func(i int, f zapcore.Field) {
		if out == nil {
			out = append([]zapcore.Field(nil), fs...)
		}
		out[i] = f
	}
	for i, f := range fs {
		switch f.Type {
		case zapcore.StringType:
			if v := s.String(f.String); v != f.String {
				f.String = v
				set(i, f)
			}
		case zapcore.ByteStringType:
			if b, ok := f.Interface.([]byte); ok {
				if v := s.String(string(b)); v != string(b) {
					f.Interface = []byte(v)
					set(i, f)
				}
			}
		case zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok {
				if v := s.Error(err); v != err {
					f.Interface = v
					set(i, f)
				}
			}
		case zapcore.StringerType:
			if text, ok := safeString(f.Interface); ok {
				if v := s.String(text); v != text {
					set(i, zapcore.Field{Key: f.Key, Type: zapcore.StringType, String: v})
				}
			}
		case zapcore.ObjectMarshalerType, zapcore.ArrayMarshalerType, zapcore.ReflectType, zapcore.InlineMarshalerType:
			enc := zapcore.NewMapObjectEncoder()
			if func() (ok bool) {
				defer func() {
					if recover() != nil {
						ok = false
					}
				}()
				f.AddTo(enc)
				return true
			}() {
				b, err := json.Marshal(enc.Fields)
				text := string(b)
				if err != nil {
					text = fmt.Sprint(enc.Fields)
				}
				if v := s.String(text); v != text {
					key := f.Key
					if key == "" {
						key = "fields"
					}
					set(i, zapcore.Field{Key: key, Type: zapcore.StringType, String: v})
				}
			}
		}
	}
	if out == nil {
		return fs
	}
	return out
}

// safeString calls String on a Stringer; a nil pointer or a panic gives up.
func safeString(v any) (text string, ok bool) {
	st, isStringer := v.(fmt.Stringer)
	if !isStringer {
		return "", false
	}
	defer func() {
		if recover() != nil {
			text, ok = "", false
		}
	}()
	return st.String(), true
}
