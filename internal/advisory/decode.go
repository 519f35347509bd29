package advisory

import (
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// A scan decodes every advisory of the packages it found, and encoding/json spent most of
// that time in reflection and in a first pass that only checks the syntax (3.7 ms of a
// 45 ms scan of a Go binary with 250 stdlib advisories). recordDecoder reads the record
// types of this package directly, in one pass. It is exact or it gives up: whenever the
// input holds something it does not read exactly as encoding/json would (a key in another
// case or given twice, a null, an escaped surrogate, invalid UTF-8 in a value it keeps, a
// value of another type, invalid JSON), it reports failure and the caller decodes with
// encoding/json, which then gives the same result or the same error as before.
// FuzzDecodeRecordAsEncodingJSON compares the two.
type recordDecoder struct {
	b []byte
	i int
	// buf is reused to unescape strings.
	buf []byte
}

// maxSkipDepth bounds the nesting of the values skipped or kept raw; deeper ones are left
// to encoding/json, which allows 10,000 levels.
const maxSkipDepth = 200

var (
	recordMembers    = []string{"id", "modified", "published", "withdrawn", "aliases", "related", "upstream", "summary", "details", "severity", "affected", "references", "database_specific"}
	affectedMembers  = []string{"package", "severity", "ranges", "versions", "ecosystem_specific", "database_specific"}
	packageMembers   = []string{"ecosystem", "name", "purl"}
	severityMembers  = []string{"type", "score"}
	rangeMembers     = []string{"type", "repo", "events"}
	eventMembers     = []string{"introduced", "fixed", "last_affected", "limit"}
	referenceMembers = []string{"type", "url"}
	importsMembers   = []string{"imports"}
	goImportMembers  = []string{"path", "symbols", "goos", "goarch"}
)

// decodeRecord reads data into r (which must be zero) as json.Unmarshal would, or returns
// false, leaving r partly filled, when it cannot vouch for that.
func decodeRecord(data []byte, r *osvRecord) bool {
	d := recordDecoder{b: data}
	ok := d.object(recordMembers, func(k int) bool {
		switch k {
		case 0:
			return d.str(&r.ID)
		case 1:
			return d.str(&r.Modified)
		case 2:
			return d.str(&r.Published)
		case 3:
			return d.str(&r.Withdrawn)
		case 4:
			return d.strs(&r.Aliases)
		case 5:
			return d.strs(&r.Related)
		case 6:
			return d.strs(&r.Upstream)
		case 7:
			return d.str(&r.Summary)
		case 8:
			return d.str(&r.Details)
		case 9:
			return d.severities(&r.Severity)
		case 10:
			return d.affected(&r.Affected)
		case 11:
			return d.references(&r.References)
		default:
			return d.raw(&r.DatabaseSpecific)
		}
	})
	return ok && d.end()
}

// decodeGoImports reads an ecosystem_specific object's imports as json.Unmarshal into
// struct{ Imports []GoImport } would, or returns false.
func decodeGoImports(data []byte, imports *[]GoImport) bool {
	d := recordDecoder{b: data}
	ok := d.object(importsMembers, func(int) bool {
		return array(&d, imports, func(im *GoImport) bool {
			return d.object(goImportMembers, func(k int) bool {
				switch k {
				case 0:
					return d.str(&im.Path)
				case 1:
					return d.strs(&im.Symbols)
				case 2:
					return d.strs(&im.GOOS)
				default:
					return d.strs(&im.GOARCH)
				}
			})
		})
	})
	return ok && d.end()
}

func (d *recordDecoder) affected(out *[]osvAffected) bool {
	return array(d, out, func(a *osvAffected) bool {
		return d.object(affectedMembers, func(k int) bool {
			switch k {
			case 0:
				return d.object(packageMembers, func(k int) bool {
					switch k {
					case 0:
						return d.str(&a.Package.Ecosystem)
					case 1:
						return d.str(&a.Package.Name)
					default:
						return d.str(&a.Package.Purl)
					}
				})
			case 1:
				return d.severities(&a.Severity)
			case 2:
				return d.ranges(&a.Ranges)
			case 3:
				return d.strs(&a.Versions)
			case 4:
				return d.raw(&a.EcosystemSpecific)
			default:
				return d.raw(&a.DatabaseSpecific)
			}
		})
	})
}

func (d *recordDecoder) ranges(out *[]osvRange) bool {
	return array(d, out, func(r *osvRange) bool {
		return d.object(rangeMembers, func(k int) bool {
			switch k {
			case 0:
				return d.str(&r.Type)
			case 1:
				return d.str(&r.Repo)
			default:
				return array(d, &r.Events, func(e *osvEvent) bool {
					return d.object(eventMembers, func(k int) bool {
						switch k {
						case 0:
							return d.str(&e.Introduced)
						case 1:
							return d.str(&e.Fixed)
						case 2:
							return d.str(&e.LastAffected)
						default:
							return d.str(&e.Limit)
						}
					})
				})
			}
		})
	})
}

func (d *recordDecoder) severities(out *[]osvSeverity) bool {
	return array(d, out, func(s *osvSeverity) bool {
		return d.object(severityMembers, func(k int) bool {
			if k == 0 {
				return d.str(&s.Type)
			}
			return d.str(&s.Score)
		})
	})
}

func (d *recordDecoder) references(out *[]Reference) bool {
	return array(d, out, func(r *Reference) bool {
		return d.object(referenceMembers, func(k int) bool {
			if k == 0 {
				return d.str(&r.Type)
			}
			return d.str(&r.URL)
		})
	})
}

func (d *recordDecoder) strs(out *[]string) bool {
	return array(d, out, d.str)
}

// array reads a JSON array into *out, each element read by elem into a zero value; an
// empty array is an empty slice, not nil, as encoding/json makes it.
func array[T any](d *recordDecoder, out *[]T, elem func(*T) bool) bool {
	d.ws()
	if d.peek() != '[' {
		return false
	}
	d.i++
	d.ws()
	s := []T{}
	if d.peek() == ']' {
		d.i++
		*out = s
		return true
	}
	for {
		// Read in place: a variable handed to elem would be allocated on the heap.
		var zero T
		s = append(s, zero)
		d.ws()
		if !elem(&s[len(s)-1]) {
			return false
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*out = s
			return true
		default:
			return false
		}
	}
}

// object reads a JSON object whose members of interest are names (at most 64): member
// reads the value of the k-th. Other members are skipped, unless their name could be one
// of names in another case (encoding/json matches names without regard to case). A member
// given twice, or null, is left to encoding/json.
func (d *recordDecoder) object(names []string, member func(k int) bool) bool {
	d.ws()
	if d.peek() != '{' {
		return false
	}
	d.i++
	d.ws()
	if d.peek() == '}' {
		d.i++
		return true
	}
	var seen uint64
	for {
		d.ws()
		key, ok := d.key()
		if !ok {
			return false
		}
		d.ws()
		if d.peek() != ':' {
			return false
		}
		d.i++
		d.ws()
		k := -1
		for j, n := range names {
			if string(key) == n {
				k = j
				break
			}
		}
		switch {
		case k < 0:
			if !lowerASCII(key) || !d.skip(0) {
				return false
			}
		case seen&(1<<k) != 0 || d.peek() == 'n':
			return false
		default:
			seen |= 1 << k
			if !member(k) {
				return false
			}
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// lowerASCII tells a name that no name of lower-case ASCII letters, digits and '_' matches
// in another case: one without upper-case or non-ASCII letters.
func lowerASCII(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// key reads a member name without escapes (one with is left to encoding/json).
func (d *recordDecoder) key() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	start := d.i + 1
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			d.i = i + 1
			return d.b[start:i], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// str reads a JSON string into *out.
func (d *recordDecoder) str(out *string) bool {
	if d.peek() != '"' {
		return false
	}
	start := d.i + 1
	ascii := true
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			if !ascii && !utf8.Valid(d.b[start:i]) {
				return false
			}
			*out = string(d.b[start:i])
			d.i = i + 1
			return true
		case c == '\\':
			d.i = i
			return d.escaped(start, out)
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return false
}

// escaped reads the rest of a string from its first backslash, at d.i.
func (d *recordDecoder) escaped(start int, out *string) bool {
	buf := append(d.buf[:0], d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			d.buf = buf
			if !utf8.Valid(buf) {
				return false
			}
			*out = string(buf)
			return true
		case c < 0x20:
			return false
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return false
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(d.b[d.i:])
			// encoding/json pairs surrogates, and turns a lone one into U+FFFD: not done here.
			if !ok || utf16.IsSurrogate(r) {
				return false
			}
			buf = utf8.AppendRune(buf, r)
			d.i += 4
		default:
			return false
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
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

// raw keeps a value's text, as json.RawMessage does (a copy).
func (d *recordDecoder) raw(out *json.RawMessage) bool {
	start := d.i
	if !d.skip(0) {
		return false
	}
	*out = append(json.RawMessage(nil), d.b[start:d.i]...)
	return true
}

// skip passes over one JSON value, checking its syntax as encoding/json does.
func (d *recordDecoder) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	d.ws()
	switch c := d.peek(); {
	case c == '"':
		return d.skipString()
	case c == '{':
		d.i++
		d.ws()
		if d.peek() == '}' {
			d.i++
			return true
		}
		for {
			d.ws()
			if d.peek() != '"' || !d.skipString() {
				return false
			}
			d.ws()
			if d.peek() != ':' {
				return false
			}
			d.i++
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		d.i++
		d.ws()
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return d.skipNumber()
	}
	return false
}

func (d *recordDecoder) skipString() bool {
	for i := d.i + 1; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			d.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if i+1 >= len(d.b) {
				return false
			}
			switch d.b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := hex4(d.b[i+2:]); !ok {
					return false
				}
				i += 5
			default:
				return false
			}
		}
	}
	return false
}

func (d *recordDecoder) skipNumber() bool {
	b, i := d.b, d.i
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
	d.i = i
	return true
}

func (d *recordDecoder) literal(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

func (d *recordDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *recordDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// end checks that only white space follows the value.
func (d *recordDecoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}
