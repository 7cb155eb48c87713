package supervision_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocSnippetsAreExamples keeps docs/supervision.md honest: every Go
// block in it must appear, line for line, in example_test.go, where it is
// compiled and run.
func TestDocSnippetsAreExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/supervision.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	normalize := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	examples := normalize(string(src))
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d Go blocks in docs/supervision.md, want at least 5", len(blocks))
	}
	for _, b := range blocks {
		if !strings.Contains(examples, normalize(b[1])) {
			t.Errorf("this block of docs/supervision.md is not in example_test.go:\n%s", b[1])
		}
	}
}
