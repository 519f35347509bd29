// Package jsonwalk steps through JSON text without decoding it. Readers that decode only what
// they need straight from the bytes (advisory records, stored inventories), and leave anything
// unusual to encoding/json, walk the rest with it: what it skips, it checks as strictly as
// encoding/json's syntax check, so a reader never accepts text encoding/json would refuse.
package jsonwalk

import "bytes"

// Walker reads B from offset I.
type Walker struct {
	B []byte
	I int
}

// WS skips white space.
func (w *Walker) WS() {
	for w.I < len(w.B) {
		switch w.B[w.I] {
		case ' ', '\t', '\n', '\r':
			w.I++
		default:
			return
		}
	}
}

// Peek is the byte at I, or 0 at the end.
func (w *Walker) Peek() byte {
	if w.I < len(w.B) {
		return w.B[w.I]
	}
	return 0
}

// Eat steps over c if it is the byte at I.
func (w *Walker) Eat(c byte) bool {
	if w.I < len(w.B) && w.B[w.I] == c {
		w.I++
		return true
	}
	return false
}

// Literal steps over lit if the text at I starts with it.
func (w *Walker) Literal(lit string) bool {
	if bytes.HasPrefix(w.B[w.I:], []byte(lit)) {
		w.I += len(lit)
		return true
	}
	return false
}

// End skips white space and reports whether nothing follows.
func (w *Walker) End() bool {
	w.WS()
	return w.I == len(w.B)
}

// Name reads an object member's name and the colon after it, with the white space around;
// a name holding an escape is refused (its reader leaves the text to encoding/json), and so
// is anything but a string at I.
func (w *Walker) Name() ([]byte, bool) {
	name, escaped, ok := w.String()
	if !ok || escaped {
		return nil, false
	}
	w.WS()
	if !w.Eat(':') {
		return nil, false
	}
	w.WS()
	return name, true
}

// Skip passes over one value (after white space), checking its syntax; a value nested more
// than maxDepth levels deep fails (encoding/json allows 10,000).
func (w *Walker) Skip(maxDepth int) bool {
	return w.skip(0, maxDepth)
}

func (w *Walker) skip(depth, maxDepth int) bool {
	if depth > maxDepth {
		return false
	}
	w.WS()
	switch c := w.Peek(); {
	case c == '"':
		return w.SkipString()
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		w.I++
		w.WS()
		if w.Eat(end) {
			return true
		}
		for {
			if c == '{' {
				if w.WS(); w.Peek() != '"' || !w.SkipString() {
					return false
				}
				if w.WS(); !w.Eat(':') {
					return false
				}
			}
			if !w.skip(depth+1, maxDepth) {
				return false
			}
			w.WS()
			switch {
			case w.Eat(','):
			case w.Eat(end):
				return true
			default:
				return false
			}
		}
	case c == 't':
		return w.Literal("true")
	case c == 'f':
		return w.Literal("false")
	case c == 'n':
		return w.Literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return w.skipNumber()
	}
	return false
}

// stringSpecial marks the bytes a string's scan stops at: its end, an escape, and the
// control characters JSON does not allow in it.
var stringSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// SkipString passes over the string at I, checking its escapes.
func (w *Walker) SkipString() bool {
	_, _, ok := w.String()
	return ok
}

// String reads the string at I: its text between the quotes, as written, and whether it holds
// escapes, checked as encoding/json checks them (UTF-8 is left to the caller, as encoding/json's
// syntax check leaves it to its decoder). On failure it reads nothing.
func (w *Walker) String() (raw []byte, escaped, ok bool) {
	if w.Peek() != '"' {
		return nil, false, false
	}
	start := w.I + 1
	for i := start; i < len(w.B); i++ {
		for i < len(w.B) && !stringSpecial[w.B[i]] {
			i++
		}
		if i == len(w.B) {
			break
		}
		switch c := w.B[i]; {
		case c == '"':
			w.I = i + 1
			return w.B[start:i], escaped, true
		case c < 0x20:
			return nil, false, false
		default: // a backslash
			escaped = true
			if i+1 >= len(w.B) {
				return nil, false, false
			}
			switch w.B[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := Hex4(w.B[i+2:]); !ok {
					return nil, false, false
				}
				i += 5
			default:
				return nil, false, false
			}
		}
	}
	return nil, false, false
}

// skipNumber passes over a number as JSON writes them: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (w *Walker) skipNumber() bool {
	b, i := w.B, w.I
	digits := func() bool {
		n := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	w.I = i
	return true
}

// Hex4 reads the four hexadecimal digits of a \u escape.
func Hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
