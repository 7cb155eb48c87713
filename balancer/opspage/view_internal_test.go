package opspage

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// A 10 KiB label of markup, control characters and invalid bytes (more
// than WithLabel lets a client have, as a hostile node might send) comes
// out clipped, valid and printable, saying how much was left out.
func TestClipHostileText(t *testing.T) {
	label := strings.Repeat("<script>\x1b[2J\r\n\x00\xff\u202e", 600)[:10<<10]
	got := clip(label, maxShort)
	if len(got) > maxShort+32 || !utf8.ValidString(got) || !strings.HasSuffix(got, "more bytes)") {
		t.Fatalf("clip: %d bytes %q", len(got), got)
	}
	for _, r := range got {
		if !unicode.IsPrint(r) && r != ' ' {
			t.Fatalf("clip left %U in %q", r, got)
		}
	}
	if !strings.Contains(got, `<script>\u001b[2J\u000d\u000a\u0000\u00ff\u202e`) {
		t.Errorf("clip: %q", got)
	}
	if s := "deribit-md-1 ünïcode"; clip(s, maxShort) != s {
		t.Errorf("clip changed a plain label: %q", clip(s, maxShort))
	}
}
