package advisory

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lading-registry/lading/internal/jsonwalk"
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
	jsonwalk.Walker
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
	d := recordDecoder{Walker: jsonwalk.Walker{B: data}}
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
	return ok && d.End()
}

// decodeGoImports reads an ecosystem_specific object's imports as json.Unmarshal into
// struct{ Imports []GoImport } would, or returns false.
func decodeGoImports(data []byte, imports *[]GoImport) bool {
	d := recordDecoder{Walker: jsonwalk.Walker{B: data}}
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
	return ok && d.End()
}

func (d *recordDecoder) affected(out *[]osvAffected) bool {
	return array(d, out, func(a *osvAffected) bool {
		return d.object(affectedMembers, func(k int) bool {
			switch k {
			case 0:
				return d.strings(packageMembers, &a.Package.Ecosystem, &a.Package.Name, &a.Package.Purl)
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
					return d.strings(eventMembers, &e.Introduced, &e.Fixed, &e.LastAffected, &e.Limit)
				})
			}
		})
	})
}

func (d *recordDecoder) severities(out *[]osvSeverity) bool {
	return array(d, out, func(s *osvSeverity) bool {
		return d.strings(severityMembers, &s.Type, &s.Score)
	})
}

func (d *recordDecoder) references(out *[]Reference) bool {
	return array(d, out, func(r *Reference) bool {
		return d.strings(referenceMembers, &r.Type, &r.URL)
	})
}

// strings reads an object whose members of interest are all strings: names[k] into *out[k].
func (d *recordDecoder) strings(names []string, out ...*string) bool {
	return d.object(names, func(k int) bool { return d.str(out[k]) })
}

func (d *recordDecoder) strs(out *[]string) bool {
	return array(d, out, d.str)
}

// array reads a JSON array into *out, each element read by elem into a zero value; an
// empty array is an empty slice, not nil, as encoding/json makes it.
func array[T any](d *recordDecoder, out *[]T, elem func(*T) bool) bool {
	d.WS()
	if d.Peek() != '[' {
		return false
	}
	d.I++
	d.WS()
	s := []T{}
	if d.Peek() == ']' {
		d.I++
		*out = s
		return true
	}
	for {
		// Read in place: a variable handed to elem would be allocated on the heap.
		var zero T
		s = append(s, zero)
		d.WS()
		if !elem(&s[len(s)-1]) {
			return false
		}
		d.WS()
		switch d.Peek() {
		case ',':
			d.I++
		case ']':
			d.I++
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
	d.WS()
	if d.Peek() != '{' {
		return false
	}
	d.I++
	d.WS()
	if d.Peek() == '}' {
		d.I++
		return true
	}
	var seen uint64
	for {
		d.WS()
		key, ok := d.Name()
		if !ok {
			return false
		}
		k := -1
		for j, n := range names {
			if string(key) == n {
				k = j
				break
			}
		}
		switch {
		case k < 0:
			if !lowerASCII(key) || !d.Skip(maxSkipDepth) {
				return false
			}
		case seen&(1<<k) != 0 || d.Peek() == 'n':
			return false
		default:
			seen |= 1 << k
			if !member(k) {
				return false
			}
		}
		d.WS()
		switch d.Peek() {
		case ',':
			d.I++
		case '}':
			d.I++
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

// str reads a JSON string into *out.
func (d *recordDecoder) str(out *string) bool {
	raw, escaped, ok := d.String()
	switch {
	case !ok:
		return false
	case escaped:
		return d.unescape(raw, out)
	case !utf8.Valid(raw):
		return false
	}
	*out = string(raw)
	return true
}

// unescape decodes raw, a string's text whose escapes String checked, into *out.
func (d *recordDecoder) unescape(raw []byte, out *string) bool {
	buf := d.buf[:0]
	for i := 0; i < len(raw); i++ {
		// The text up to the next escape, at once.
		n := bytes.IndexByte(raw[i:], '\\')
		if n < 0 {
			buf = append(buf, raw[i:]...)
			break
		}
		buf = append(buf, raw[i:i+n]...)
		i += n + 1
		switch e := raw[i]; e {
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
			r, _ := jsonwalk.Hex4(raw[i+1:]) // String checked the four digits
			// encoding/json pairs surrogates, and turns a lone one into U+FFFD: not done here.
			if utf16.IsSurrogate(r) {
				return false
			}
			buf = utf8.AppendRune(buf, r)
			i += 4
		default: // '"', '\\', '/'
			buf = append(buf, e)
		}
	}
	d.buf = buf
	if !utf8.Valid(buf) {
		return false
	}
	*out = string(buf)
	return true
}

// raw keeps a value's text, as json.RawMessage does (a copy).
func (d *recordDecoder) raw(out *json.RawMessage) bool {
	start := d.I
	if !d.Skip(maxSkipDepth) {
		return false
	}
	*out = append(json.RawMessage(nil), d.B[start:d.I]...)
	return true
}
