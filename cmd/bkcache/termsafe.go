package main

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// What bkcache prints comes in part from records, registries and file
// names that others wrote. A terminal obeys the control sequences in it
// (OSC to retitle or hyperlink, CSI to move the cursor and rewrite what
// was printed), and bidi controls reorder what is shown. Results on
// stdout and errors pass through terminalSafe, which shows such
// characters escaped instead; progress on stderr is BuildKit's display,
// which draws with them on purpose.

// terminalSafe is a writer that escapes what a terminal would act on.
type terminalSafe struct{ w io.Writer }

// safeOutput wraps w, once.
func safeOutput(w io.Writer) io.Writer {
	if _, ok := w.(terminalSafe); ok {
		return w
	}
	return terminalSafe{w}
}

func (t terminalSafe) Write(p []byte) (int, error) {
	if _, err := t.w.Write(escapeTerminal(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// escapeTerminal returns p with every byte that is not UTF-8 written \xNN,
// and every control or format character but newline and tab written
// \uNNNN (so JSON stays JSON).
func escapeTerminal(p []byte) []byte {
	clean := true
	for _, r := range string(p) {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return p
	}
	out := make([]byte, 0, len(p)+16)
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && n == 1:
			out = fmt.Appendf(out, `\x%02x`, p[0])
		case unsafeRune(r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, p[:n]...)
		}
		p = p[n:]
	}
	return out
}

func unsafeRune(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
