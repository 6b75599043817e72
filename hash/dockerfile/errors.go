package dockerfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// SyntaxError reports a Dockerfile that does not parse; Line is 1-based,
// or 0 when unknown.
type SyntaxError struct {
	Line int
	Err  error
}

// Error says where, and what the parser said, cut to an escaped excerpt:
// the parser quotes the text it refused, and a Dockerfile that is not one
// (a link to an environment file, say) must not reach a CI log whole.
func (e *SyntaxError) Error() string {
	msg := Excerpt(e.Err.Error(), maxExcerpt)
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return msg
}

// maxExcerpt is how much of a message quoting file content is shown.
const maxExcerpt = 100

// Excerpt returns s with every character that is not printable escaped
// (Go's \x, \u notation), cut to at most n characters of s with "…"
// after: safe to print on a terminal or in a log.
func Excerpt(s string, n int) string {
	var b strings.Builder
	for i, r := range []rune(s) {
		if i == n {
			b.WriteString("…")
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func (e *SyntaxError) Unwrap() error { return e.Err }

func syntaxErr(err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return &SyntaxError{Line: le.Locations[0][0].Start.Line, Err: le.Unwrap()}
	}
	return &SyntaxError{Err: err}
}
