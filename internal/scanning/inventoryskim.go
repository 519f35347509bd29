package scanning

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/jsonwalk"
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
	s := skimmer{jsonwalk.Walker{B: b}}
	inv := &storedInventory{}
	s.WS()
	if !s.Eat('{') {
		return nil, errNotSkimmable
	}
	var seen [4]bool
	for first := true; ; first = false {
		s.WS()
		if s.Eat('}') {
			break
		}
		if !first && (!s.Eat(',') || s.End()) {
			return nil, errNotSkimmable
		}
		name, ok := s.member()
		if !ok {
			return nil, errNotSkimmable
		}
		start := s.I
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
			if !s.Skip(maxSkimDepth) {
				return nil, errNotSkimmable
			}
			switch field {
			case 0:
				err = json.Unmarshal(b[start:s.I], &inv.OS)
			case 2:
				err = json.Unmarshal(b[start:s.I], &inv.History)
			case 3:
				err = json.Unmarshal(b[start:s.I], &inv.Skipped)
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
	if s.Literal("null") {
		return nil, nil
	}
	if !s.Eat('[') {
		return nil, errNotSkimmable
	}
	out := []inventory.Package{}
	for first := true; ; first = false {
		s.WS()
		if s.Eat(']') {
			return out, nil
		}
		if !first && (!s.Eat(',') || s.End()) {
			return nil, errNotSkimmable
		}
		start := s.I
		var vals [len(packageFields)][]byte
		var set [len(packageFields)]bool
		plain := true
		switch {
		case s.Literal("null"):
			plain = false // decodes to a zero package
		case s.Eat('{'):
			for firstMember := true; ; firstMember = false {
				s.WS()
				if s.Eat('}') {
					break
				}
				if !firstMember && (!s.Eat(',') || s.End()) {
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
					if !s.Skip(maxSkimDepth) {
						return nil, errNotSkimmable
					}
					continue
				}
				set[field] = true
				v, escaped, ok := s.String()
				switch {
				case ok && !escaped && utf8.Valid(v):
					vals[field] = v
				case ok:
					plain = false
				default:
					plain = false
					if !s.Skip(maxSkimDepth) {
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
		if err := json.Unmarshal(s.B[start:s.I], &p); err != nil {
			return nil, err
		}
		if plain || keep(p) {
			out = append(out, p)
		}
	}
}

// skimmer walks JSON without decoding it.
type skimmer struct {
	jsonwalk.Walker
}

// member reads an object member's name and the colon after it; a name with escapes is
// refused (the caller falls back to encoding/json).
func (s *skimmer) member() ([]byte, bool) {
	name, ok := s.Name()
	return name, ok && s.I < len(s.B)
}
