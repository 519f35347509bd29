package advisory

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"

	cvss20 "github.com/pandatix/go-cvss/20"
	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"
)

// FindingSeverity is ECR's and Inspector's severity label.
type FindingSeverity string

// The labels ECR uses.
const (
	SeverityCritical      FindingSeverity = "CRITICAL"
	SeverityHigh          FindingSeverity = "HIGH"
	SeverityMedium        FindingSeverity = "MEDIUM"
	SeverityLow           FindingSeverity = "LOW"
	SeverityInformational FindingSeverity = "INFORMATIONAL"
	SeverityUndefined     FindingSeverity = "UNDEFINED"
)

// rank orders labels, UNDEFINED lowest.
func (s FindingSeverity) rank() int {
	switch s {
	case SeverityCritical:
		return 5
	case SeverityHigh:
		return 4
	case SeverityMedium:
		return 3
	case SeverityLow:
		return 2
	case SeverityInformational:
		return 1
	}
	return 0
}

// CVSS is one scored CVSS vector.
type CVSS struct {
	Version   string  `json:"version"` // "2.0", "3.0", "3.1" or "4.0"
	Vector    string  `json:"vector"`
	BaseScore float64 `json:"baseScore"`
	// Rating is the CVSS qualitative rating (NONE, LOW, MEDIUM, HIGH, CRITICAL).
	Rating string `json:"rating"`
}

// SeveritySource says where a severity came from, best first; merging keeps the best source.
type SeveritySource string

// Severity sources in order of preference.
const (
	SourceCVSSv3        SeveritySource = "CVSS_V3"
	SourceCVSSv4        SeveritySource = "CVSS_V4"
	SourceDatabaseWord  SeveritySource = "database_specific.severity"
	SourceDatabaseScore SeveritySource = "database_specific.cvss"
	SourceDistribution  SeveritySource = "distribution"
	SourceCVSSv2        SeveritySource = "CVSS_V2"
)

func (s SeveritySource) rank() int {
	switch s {
	case SourceCVSSv3:
		return 6
	case SourceCVSSv4:
		return 5
	case SourceDatabaseWord:
		return 4
	case SourceDatabaseScore:
		return 3
	case SourceDistribution:
		return 2
	case SourceCVSSv2:
		return 1
	}
	return 0
}

// Severity is the severity Lading reports for a vulnerability.
type Severity struct {
	Level  FindingSeverity `json:"level"`
	Source SeveritySource  `json:"source,omitempty"`
	// Score is the CVSS base score when the source has one (vector or numeric score).
	Score    float64 `json:"score,omitempty"`
	HasScore bool    `json:"-"`
	Vector   string  `json:"vector,omitempty"`
	Version  string  `json:"version,omitempty"`
	// Raw is the word the source used (e.g. "MODERATE", "Important", "medium").
	Raw string `json:"raw,omitempty"`
}

// better reports whether s should win over t when merging records of one vulnerability:
// the better source wins, then the higher level.
func (s Severity) better(t Severity) bool {
	if s.Source.rank() != t.Source.rank() {
		return s.Source.rank() > t.Source.rank()
	}
	if s.Level.rank() != t.Level.rank() {
		return s.Level.rank() > t.Level.rank()
	}
	return s.Score > t.Score
}

func undefined() Severity { return Severity{Level: SeverityUndefined} }

// levelFromScore maps a CVSS v3/v4 base score to a label (CVSS qualitative scale; "None"
// becomes INFORMATIONAL).
func levelFromScore(score float64) FindingSeverity {
	switch {
	case score >= 9.0:
		return SeverityCritical
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	}
	return SeverityInformational
}

// levelFromV2Score follows NVD's CVSS v2 scale, which has no critical.
func levelFromV2Score(score float64) FindingSeverity {
	switch {
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	}
	return SeverityInformational
}

func rating(level FindingSeverity) string {
	if level == SeverityInformational {
		return "NONE"
	}
	return string(level)
}

// ScoreVector computes the base score of a CVSS v2, v3.0, v3.1 or v4.0 vector.
func ScoreVector(vector string) (CVSS, bool) {
	vector = strings.TrimSpace(vector)
	var c CVSS
	switch {
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := cvss31.ParseVector(vector)
		if err != nil {
			return c, false
		}
		c = CVSS{Version: "3.1", Vector: vector, BaseScore: v.BaseScore()}
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := cvss30.ParseVector(vector)
		if err != nil {
			return c, false
		}
		c = CVSS{Version: "3.0", Vector: vector, BaseScore: v.BaseScore()}
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := cvss40.ParseVector(vector)
		if err != nil {
			return c, false
		}
		c = CVSS{Version: "4.0", Vector: vector, BaseScore: v.Score()}
	default:
		v, err := cvss20.ParseVector(strings.TrimPrefix(vector, "CVSS:2.0/"))
		if err != nil {
			return c, false
		}
		c = CVSS{Version: "2.0", Vector: vector, BaseScore: v.BaseScore()}
		c.Rating = rating(levelFromV2Score(c.BaseScore))
		return c, true
	}
	c.Rating = rating(levelFromScore(c.BaseScore))
	return c, true
}

func scoreVectors(sev []osvSeverity) []CVSS {
	var out []CVSS
	for _, s := range sev {
		switch strings.ToUpper(s.Type) {
		case "CVSS_V2", "CVSS_V3", "CVSS_V4":
			if c, ok := ScoreVector(s.Score); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// fromVectors picks the best vector: the highest-scoring v3.x, else v4, else v2. v3 comes
// first because it is what ECR and Inspector score findings with.
func fromVectors(cs []CVSS) Severity {
	best := undefined()
	for _, c := range cs {
		var s Severity
		switch c.Version {
		case "3.0", "3.1":
			s = Severity{Level: levelFromScore(c.BaseScore), Source: SourceCVSSv3}
		case "4.0":
			s = Severity{Level: levelFromScore(c.BaseScore), Source: SourceCVSSv4}
		default:
			s = Severity{Level: levelFromV2Score(c.BaseScore), Source: SourceCVSSv2}
		}
		s.Score, s.HasScore, s.Vector, s.Version = c.BaseScore, true, c.Vector, c.Version
		if s.better(best) {
			best = s
		}
	}
	return best
}

// levelFromWord maps the severity words of GHSA (LOW/MODERATE/HIGH/CRITICAL), Red Hat
// (Low/Moderate/Important/Critical), Ubuntu priorities and Debian urgencies.
func levelFromWord(w string) FindingSeverity {
	w = strings.ToLower(strings.TrimSpace(w))
	w = strings.TrimRight(w, "*") // Debian marks some urgencies "low**"
	switch w {
	case "critical":
		return SeverityCritical
	case "high", "important":
		return SeverityHigh
	case "moderate", "medium":
		return SeverityMedium
	case "low":
		return SeverityLow
	case "negligible", "unimportant", "none", "informational", "info":
		return SeverityInformational
	}
	return SeverityUndefined
}

// mayName tells whether JSON text m can hold a member named by one of quoted (each written
// with its opening quote, as it appears in the text): without an escape sequence in m a name
// is spelled in it as it is, so when none of them appears, decoding m finds none of them. A Go
// advisory's ecosystem_specific (its imports and their symbols) is most of its record, and
// names no severity.
func mayName(m json.RawMessage, quoted ...string) bool {
	if bytes.IndexByte(m, '\\') >= 0 {
		return true
	}
	for _, q := range quoted {
		if bytes.Contains(m, []byte(q)) {
			return true
		}
	}
	return false
}

// fields reads the top-level members of a JSON object, ignoring anything else.
func fields(m json.RawMessage) map[string]json.RawMessage {
	if len(m) == 0 || m[0] != '{' {
		return nil
	}
	var out map[string]json.RawMessage
	if json.Unmarshal(m, &out) != nil {
		return nil
	}
	return out
}

func stringField(f map[string]json.RawMessage, name string) string {
	raw, ok := f[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func numberField(f map[string]json.RawMessage, name string) (float64, bool) {
	raw, ok := f[name]
	if !ok {
		return 0, false
	}
	var n float64
	if json.Unmarshal(raw, &n) != nil || math.IsNaN(n) || n < 0 || n > 10 {
		return 0, false
	}
	return n, true
}

// fromSpecific reads a severity word (GHSA's database_specific.severity, OSS-Fuzz's
// ecosystem_specific.severity) or a numeric CVSS score (RubyGems' cvss_v3, the Node.js
// security WG's cvss_score) out of a *_specific object.
func fromSpecific(specific ...json.RawMessage) Severity {
	best := undefined()
	for _, m := range specific {
		if !mayName(m, `"severity"`, `"cvss_`, `"urgency"`) {
			continue
		}
		if s := fromFields(fields(m)); s.better(best) {
			best = s
		}
	}
	return best
}

// fromFields is fromSpecific of one object's members.
func fromFields(f map[string]json.RawMessage) Severity {
	best := undefined()
	if f == nil {
		return best
	}
	if w := stringField(f, "severity"); w != "" {
		if l := levelFromWord(w); l != SeverityUndefined {
			if s := (Severity{Level: l, Source: SourceDatabaseWord, Raw: w}); s.better(best) {
				best = s
			}
		}
	}
	for _, name := range [...]string{"cvss_v3", "cvss_score", "cvss_v4", "cvss_v2"} {
		n, ok := numberField(f, name)
		if !ok {
			continue
		}
		l := levelFromScore(n)
		if name == "cvss_v2" {
			l = levelFromV2Score(n)
		}
		if s := (Severity{Level: l, Source: SourceDatabaseScore, Score: n, HasScore: true, Raw: name}); s.better(best) {
			best = s
		}
		break
	}
	if w := stringField(f, "urgency"); w != "" {
		if l := levelFromWord(w); l != SeverityUndefined {
			if s := (Severity{Level: l, Source: SourceDistribution, Raw: w}); s.better(best) {
				best = s
			}
		}
	}
	return best
}

// fromDistribution reads a distribution's own rating: Ubuntu's priority (severity type
// "Ubuntu") or the Red Hat family's "Important: …" summary prefix.
func fromDistribution(sev []osvSeverity, summary string, ecosystems ...string) Severity {
	for _, s := range sev {
		if strings.EqualFold(s.Type, "Ubuntu") {
			if l := levelFromWord(s.Score); l != SeverityUndefined {
				return Severity{Level: l, Source: SourceDistribution, Raw: s.Score}
			}
		}
	}
	for _, eco := range ecosystems {
		switch BaseEcosystem(eco) {
		case "AlmaLinux", "Rocky Linux", "Red Hat", "openEuler":
			if word, _, ok := strings.Cut(summary, ":"); ok && len(word) <= 12 {
				if l := levelFromWord(word); l != SeverityUndefined {
					return Severity{Level: l, Source: SourceDistribution, Raw: word}
				}
			}
			return undefined()
		}
	}
	return undefined()
}

// recordSeverity is the record-level severity: CVSS v3/v4 vectors, else a severity word or
// score in database_specific, else the distribution's own rating, else a CVSS v2 vector.
func recordSeverity(a *Advisory, sev []osvSeverity) Severity {
	best := fromVectors(a.CVSS)
	if s := fromSpecific(a.DatabaseSpecific); s.better(best) {
		best = s
	}
	ecos := make([]string, 0, 1)
	if len(a.Affected) > 0 {
		ecos = append(ecos, a.Affected[0].Ecosystem)
	}
	if s := fromDistribution(sev, a.Summary, ecos...); s.better(best) {
		best = s
	}
	return best
}

// affectedSeverity is an affected entry's own severity, or nil when it has none.
func affectedSeverity(sev []osvSeverity, cs []CVSS, ecosystemSpecific, databaseSpecific json.RawMessage) *Severity {
	best := fromVectors(cs)
	if s := fromSpecific(ecosystemSpecific, databaseSpecific); s.better(best) {
		best = s
	}
	if s := fromDistribution(sev, ""); s.better(best) {
		best = s
	}
	if best.Level == SeverityUndefined {
		return nil
	}
	return &best
}
