package advisory

import (
	"encoding/json"
	"reflect"
	"testing"
)

// sameAsEncodingJSON fails t when decodeRecord reads data and encoding/json does not read it
// the same; it returns whether decodeRecord read it.
func sameAsEncodingJSON(t *testing.T, data []byte) bool {
	t.Helper()
	var fast, slow osvRecord
	ok := decodeRecord(data, &fast)
	err := json.Unmarshal(data, &slow)
	if ok && err != nil {
		t.Fatalf("decodeRecord read %q, which encoding/json refuses: %v", data, err)
	}
	if ok && !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decodeRecord read %q as\n%#v\nencoding/json as\n%#v", data, fast, slow)
	}
	return ok
}

// sameImportsAsEncodingJSON is sameAsEncodingJSON for decodeGoImports.
func sameImportsAsEncodingJSON(t *testing.T, data []byte) bool {
	t.Helper()
	var fast []GoImport
	var slow struct {
		Imports []GoImport `json:"imports"`
	}
	ok := decodeGoImports(data, &fast)
	err := json.Unmarshal(data, &slow)
	if ok && err != nil {
		t.Fatalf("decodeGoImports read %q, which encoding/json refuses: %v", data, err)
	}
	if ok && !reflect.DeepEqual(fast, slow.Imports) {
		t.Fatalf("decodeGoImports read %q as\n%#v\nencoding/json as\n%#v", data, fast, slow.Imports)
	}
	return ok
}

// Every real record takes the direct path (else it would be a path never taken) and reads
// as encoding/json reads it.
func TestDecodeRecordReadsRealRecordsAsEncodingJSON(t *testing.T) {
	imports := 0
	for _, raw := range miniRecords(t) {
		compact, _, err := Canonicalize(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{compact, raw} {
			if !sameAsEncodingJSON(t, data) {
				t.Fatalf("decodeRecord left a real record to encoding/json: %.200s", data)
			}
		}
		var r osvRecord
		if err := json.Unmarshal(compact, &r); err != nil {
			t.Fatal(err)
		}
		for _, a := range r.Affected {
			if len(a.EcosystemSpecific) == 0 || BaseEcosystem(a.Package.Ecosystem) != "Go" {
				continue
			}
			imports++
			if !sameImportsAsEncodingJSON(t, a.EcosystemSpecific) {
				t.Fatalf("decodeGoImports left a real record's imports to encoding/json: %s", a.EcosystemSpecific)
			}
		}
	}
	if imports == 0 {
		t.Fatal("no Go record with imports among the test records")
	}
}

func TestDecodeRecordAsEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		data string
		// direct: decodeRecord must read it (false: it must leave it to encoding/json).
		direct bool
	}{
		{"escapes", `{"id":"X","summary":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\u0000","details":"caf\u00e9 \u2603"}`, true},
		{"UTF-8", `{"id":"X","summary":"café ☃ 𝄞"}`, true},
		{"white space", " \n{ \"id\" : \"X\" , \"aliases\" : [ \"A\" , \"B\" ] , \"affected\" : [ { \"package\" : { \"name\" : \"n\" } } ] }\t\r\n", true},
		{"empty lists", `{"id":"X","aliases":[],"affected":[],"references":[],"severity":[]}`, true},
		{"empty objects", `{"id":"X","affected":[{"package":{},"ranges":[{"events":[{}]}],"ecosystem_specific":{},"database_specific":{}}],"database_specific":{}}`, true},
		{"unknown members of every kind", `{"x":1,"y":-0.5e+10,"z":[true,false,null,{"a":[1E3,"\u00e9\n"]}],"credits":[{"name":"N","contact":["c"]}],"id":"X","schema_version":"1.6.0","w":"\ud83d\ude00"}`, true},
		{"raw members kept as written", `{"id":"X","database_specific":{"a": [1, "b\u0041"],"c":null},"affected":[{"ecosystem_specific":[1,2],"database_specific":"s"}]}`, true},
		{"raw scalars", `{"id":"X","affected":[{"ecosystem_specific":-12.5e-3,"database_specific":true}]}`, true},
		{"null member", `{"id":"X","summary":null}`, false},
		{"null raw member", `{"id":"X","database_specific":null}`, false},
		{"null in a list", `{"id":"X","aliases":[null]}`, false},
		{"member given twice", `{"id":"X","id":"Y"}`, false},
		{"member in another case", `{"id":"X","Summary":"s"}`, false},
		{"member in another case, non-ASCII", `{"id":"X","ſummary":"s"}`, false},
		{"escaped name", `{"i\u0064":"X"}`, false},
		{"escaped surrogate pair", `{"id":"X","summary":"\ud83d\ude00"}`, false},
		{"lone surrogate", `{"id":"X","summary":"\ud83d"}`, false},
		{"invalid UTF-8", "{\"id\":\"X\",\"summary\":\"\xff\"}", false},
		{"number for a string", `{"id":1}`, false},
		{"object for a list", `{"id":"X","aliases":{}}`, false},
		{"string for an object", `{"id":"X","affected":["a"]}`, false},
		{"trailing comma", `{"id":"X",}`, false},
		{"trailing text", `{"id":"X"} x`, false},
		{"two values", `{"id":"X"}{}`, false},
		{"control character", "{\"id\":\"X\ny\"}", false},
		{"bad escape", `{"id":"X","summary":"\x"}`, false},
		{"bad number", `{"id":"X","n":01}`, false},
		{"bad number in a raw member", `{"id":"X","database_specific":{"n":-}}`, false},
		{"bad literal", `{"id":"X","n":tru}`, false},
		{"unterminated", `{"id":"X","summary":"s`, false},
		{"not an object", `["id"]`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameAsEncodingJSON(t, []byte(tt.data)); got != tt.direct {
				t.Fatalf("decodeRecord read it: %v, want %v", got, tt.direct)
			}
		})
	}
}

func TestDecodeGoImportsAsEncodingJSON(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		direct bool
	}{
		{"imports", `{"imports":[{"path":"p","symbols":["A","T.M"],"goos":["linux"],"goarch":["amd64"]},{"path":""}]}`, true},
		{"other members", `{"x":{"imports":1},"imports":[],"y":[]}`, true},
		{"no imports", `{}`, true},
		{"null imports", `{"imports":null}`, false},
		{"imports twice", `{"imports":[],"imports":[]}`, false},
		{"path in another case", `{"imports":[{"Path":"p"}]}`, false},
		{"not an object", `[]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameImportsAsEncodingJSON(t, []byte(tt.data)); got != tt.direct {
				t.Fatalf("decodeGoImports read it: %v, want %v", got, tt.direct)
			}
		})
	}
}

// Whatever the input, decodeRecord and decodeGoImports read it as encoding/json does, or
// leave it to encoding/json.
func FuzzDecodeRecordAsEncodingJSON(f *testing.F) {
	for _, raw := range miniRecords(f, "Go", "PyPI", "Debian", "npm") {
		f.Add(raw)
	}
	f.Add([]byte(`{"imports":[{"path":"p","symbols":["A"],"goos":["linux"]}],"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"id":"X","summary":"a\"b\\\u00e9","Details":"d","affected":[{"package":{"name":"n"},"ranges":[{"events":[{"fixed":"1"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsEncodingJSON(t, data)
		sameImportsAsEncodingJSON(t, data)
	})
}

func BenchmarkParseCanonical(b *testing.B) {
	type rec struct {
		compact []byte
		hash    string
	}
	var recs []rec
	for _, raw := range miniRecords(b) {
		c, h, err := Canonicalize(raw)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec{c, h})
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range recs {
			if _, err := ParseCanonical(r.compact, r.hash); err != nil {
				b.Fatal(err)
			}
		}
	}
}
