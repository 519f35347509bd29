package advisory

import (
	"encoding/json"
	"testing"
)

// specificSamples are ecosystem_specific and database_specific objects: with a severity
// member, spelled plainly or escaped, and without one.
var specificSamples = []string{
	`{"severity":"HIGH"}`,
	`{"sev\u0065rity":"HIGH"}`,
	`{"cvss_score":9.8,"urgency":"low"}`,
	`{"cvss_v2":5.0}`,
	`{"c\u0076ss_v3":7.5}`,
	`{"urgency":"medium*"}`,
	`{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse","MatchStrings"]}]}`,
	`{"imports":[{"path":"example.com/severity","symbols":["severity"]}]}`,
	`{"url":"https://pkg.go.dev/vuln/GO-2021-0113","review_status":"REVIEWED"}`,
	`{"severity":["not","a","word"]}`, `{"cvss_score":"9.8"}`, `[]`, `"severity"`, `{`, ``,
}

// TestFromSpecificSkipsOnlyObjectsWithoutSeverity: the objects fromSpecific does not decode
// (no severity name in their text) are the ones that hold none; every sample gives what
// decoding it gives.
func TestFromSpecificSkipsOnlyObjectsWithoutSeverity(t *testing.T) {
	want := map[string]FindingSeverity{
		`{"severity":"HIGH"}`: SeverityHigh, `{"sev\u0065rity":"HIGH"}`: SeverityHigh,
		`{"c\u0076ss_v3":7.5}`: SeverityHigh,
	}
	for _, s := range specificSamples {
		m := json.RawMessage(s)
		got, decoded := fromSpecific(m), fromFields(fields(m))
		if got != decoded {
			t.Errorf("%s: %+v, decoded %+v", s, got, decoded)
		}
		if w, ok := want[s]; ok && got.Level != w {
			t.Errorf("%s: level %s, want %s", s, got.Level, w)
		}
	}
}

func FuzzFromSpecific(f *testing.F) {
	for _, s := range specificSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := json.RawMessage(raw)
		if got, decoded := fromSpecific(m), fromFields(fields(m)); got != decoded {
			t.Fatalf("%q: %+v, decoded %+v", raw, got, decoded)
		}
	})
}
