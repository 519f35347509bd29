package scanning

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/lading-registry/lading/internal/inventory"
)

// errNotSkimmable means a stored inventory is not in the shape skimInventory reads (not what
// encodeGzipJSON writes): it is decoded in full instead.
var errNotSkimmable = errors.New("inventory cannot be skimmed")

// maxSkimDepth bounds the nesting skimInventory follows inside values it skips.
const maxSkimDepth = 64

// skimInventory decodes a stored inventory's JSON as encoding/json would, except that of the
// packages it decodes only those keep selects (in order): deciding costs a scan of the
// package's bytes, not a decode. keep sees a package with only Ecosystem, Name, SourceName
// and PackageManager set. Anything but the plain shape the encoder writes (escaped or
// case-folded member names, duplicate members, non-string values for those four fields)
// makes the package, or the whole inventory (errNotSkimmable), go through encoding/json,
// so the result is always the full decode's, filtered.
func skimInventory(b []byte, keep func(inventory.Package) bool) (*storedInventory, error) {
	s := skimmer{b: b}
	inv := &storedInventory{}
	s.ws()
	if !s.eat('{') {
		return nil, errNotSkimmable
	}
	var seen [4]bool
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			break
		}
		if !first && (!s.eat(',') || !s.wsThen()) {
			return nil, errNotSkimmable
		}
		name, ok := s.member()
		if !ok {
			return nil, errNotSkimmable
		}
		start := s.i
		field := -1
		switch string(name) {
		case "os":
			field = 0
		case "packages":
			field = 1
		case "history":
			field = 2
		case "skipped":
			field = 3
		default:
			for _, f := range []string{"os", "packages", "history", "skipped"} {
				if bytes.EqualFold(name, []byte(f)) {
					return nil, errNotSkimmable // encoding/json would fill the field
				}
			}
		}
		if field >= 0 {
			if seen[field] {
				return nil, errNotSkimmable
			}
			seen[field] = true
		}
		var err error
		switch field {
		case 1:
			inv.Packages, err = s.packages(keep)
		default:
			if !s.skip(0) {
				return nil, errNotSkimmable
			}
			switch field {
			case 0:
				err = json.Unmarshal(b[start:s.i], &inv.OS)
			case 2:
				err = json.Unmarshal(b[start:s.i], &inv.History)
			case 3:
				err = json.Unmarshal(b[start:s.i], &inv.Skipped)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return inv, nil
}

// packageFields are the members keep decides by, as inventory.Package names them.
var packageFields = [...]string{"ecosystem", "name", "sourceName", "packageManager"}

func (s *skimmer) packages(keep func(inventory.Package) bool) ([]inventory.Package, error) {
	if s.literal("null") {
		return nil, nil
	}
	if !s.eat('[') {
		return nil, errNotSkimmable
	}
	out := []inventory.Package{}
	for first := true; ; first = false {
		s.ws()
		if s.eat(']') {
			return out, nil
		}
		if !first && (!s.eat(',') || !s.wsThen()) {
			return nil, errNotSkimmable
		}
		start := s.i
		var vals [len(packageFields)][]byte
		var set [len(packageFields)]bool
		plain := true
		switch {
		case s.literal("null"):
			plain = false // decodes to a zero package
		case s.eat('{'):
			for firstMember := true; ; firstMember = false {
				s.ws()
				if s.eat('}') {
					break
				}
				if !firstMember && (!s.eat(',') || !s.wsThen()) {
					return nil, errNotSkimmable
				}
				name, ok := s.member()
				if !ok {
					return nil, errNotSkimmable
				}
				field := -1
				for i, f := range packageFields {
					if string(name) == f {
						field = i
					} else if bytes.EqualFold(name, []byte(f)) {
						plain = false
					}
				}
				if field < 0 || set[field] {
					plain = plain && field < 0
					if !s.skip(0) {
						return nil, errNotSkimmable
					}
					continue
				}
				set[field] = true
				v, escaped, ok := s.str()
				switch {
				case ok && !escaped && utf8.Valid(v):
					vals[field] = v
				case ok:
					plain = false
				default:
					plain = false
					if !s.skip(0) {
						return nil, errNotSkimmable
					}
				}
			}
		default:
			return nil, errNotSkimmable
		}
		if plain {
			p := inventory.Package{Ecosystem: string(vals[0]), Name: string(vals[1]), SourceName: string(vals[2]), PackageManager: string(vals[3])}
			if !keep(p) {
				continue
			}
		}
		var p inventory.Package
		if err := json.Unmarshal(s.b[start:s.i], &p); err != nil {
			return nil, err
		}
		if plain || keep(p) {
			out = append(out, p)
		}
	}
}

// skimmer walks JSON without decoding it.
type skimmer struct {
	b []byte
	i int
}

func (s *skimmer) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// wsThen skips white space and reports whether input remains.
func (s *skimmer) wsThen() bool {
	s.ws()
	return s.i < len(s.b)
}

func (s *skimmer) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *skimmer) literal(lit string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

func numberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// str reads a string and returns its raw content, and whether it holds escapes. On failure
// it reads nothing.
func (s *skimmer) str() (raw []byte, escaped, ok bool) {
	at := s.i
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			s.i = at
			return nil, false, false
		}
		if k := bytes.IndexByte(s.b[s.i:s.i+j], '\\'); k >= 0 {
			// Step over the backslash and the character it escapes (perhaps that quote).
			escaped = true
			s.i += k + 2
			if s.i >= len(s.b) {
				s.i = at
				return nil, false, false
			}
			continue
		}
		s.i += j
		raw = s.b[start:s.i]
		s.i++
		return raw, escaped, true
	}
}

// member reads an object member's name and the colon after it; a name with escapes is
// refused (the caller falls back to encoding/json).
func (s *skimmer) member() ([]byte, bool) {
	name, escaped, ok := s.str()
	if !ok || escaped {
		return nil, false
	}
	s.ws()
	if !s.eat(':') {
		return nil, false
	}
	s.ws()
	return name, s.i < len(s.b)
}

// skip passes over one value.
func (s *skimmer) skip(depth int) bool {
	if s.i >= len(s.b) || depth > maxSkimDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		for first := true; ; first = false {
			s.ws()
			if s.eat(end) {
				return true
			}
			if !first && (!s.eat(',') || !s.wsThen()) {
				return false
			}
			if c == '{' {
				if _, ok := s.member(); !ok {
					return false
				}
			}
			if !s.skip(depth + 1) {
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		for s.i < len(s.b) && numberByte(s.b[s.i]) {
			s.i++
		}
		return true
	}
	return false
}
