package jsonwalk

import (
	"encoding/json"
	"testing"
)

// skipsAll reports whether Skip passes over data as one value with nothing but white space
// after it, following it as deep as it nests (data cannot nest deeper than its length).
func skipsAll(data []byte) bool {
	w := Walker{B: data}
	return w.Skip(len(data)) && w.End()
}

func TestSkipChecksAsEncodingJSON(t *testing.T) {
	tests := []struct {
		data  string
		valid bool
	}{
		{`{"a":[1,-0.5e+10,2E3,0,-0,true,false,null,"s\"\\\/\b\f\n\r\t\u00e9"],"b":{},"c":[]}`, true},
		{" \t\n{ \"a\" : [ 1 , 2 ] } \r\n", true},
		{`"\ud83d\ude00"`, true},
		{"\"\xff\"", true}, // encoding/json's syntax check leaves UTF-8 to the decoder
		{`{"a":1,}`, false},
		{`[1,]`, false},
		{`[1 2]`, false},
		{`{"a" 1}`, false},
		{`{1:1}`, false},
		{`01`, false},
		{`1.`, false},
		{`.5`, false},
		{`1e`, false},
		{`-`, false},
		{`+1`, false},
		{`tru`, false},
		{`nul`, false},
		{`"\x"`, false},
		{`"\u12"`, false},
		{"\"a\nb\"", false},
		{`"abc`, false},
		{`{"a":1}}`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := skipsAll([]byte(tt.data)); got != tt.valid {
			t.Errorf("Skip over %q: %v, want %v", tt.data, got, tt.valid)
		}
		if json.Valid([]byte(tt.data)) != tt.valid {
			t.Errorf("the table is wrong about %q", tt.data)
		}
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		data, name string
		ok         bool
	}{
		{`"id" : 1`, "id", true},
		{`"id":1`, "id", true},
		{`"i\u0064":1`, "", false},
		{`"id" 1`, "", false},
		{`id:1`, "", false},
	}
	for _, tt := range tests {
		w := Walker{B: []byte(tt.data)}
		name, ok := w.Name()
		if ok != tt.ok || string(name) != tt.name || ok && w.Peek() != '1' {
			t.Errorf("Name of %q: %q %v at %d, want %q %v before the value", tt.data, name, ok, w.I, tt.name, tt.ok)
		}
	}
}

// Skip accepts exactly what encoding/json's syntax check accepts (at a depth it allows).
func FuzzSkipAsEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,-0.5e+10,true,null,"\u00e9"],"b":{}}`))
	f.Add([]byte(`[1,]`))
	f.Add([]byte(`"\ud83d"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 10000 {
			t.Skip("may nest deeper than encoding/json follows (10,000 levels)")
		}
		if got, want := skipsAll(data), json.Valid(data); got != want {
			t.Fatalf("Skip over %q: %v, encoding/json: %v", data, got, want)
		}
	})
}
