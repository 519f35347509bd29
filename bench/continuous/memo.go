package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// affectingMemo answers the matcher's index lookups from memory: a load's images draw their
// packages from a few tens of thousands of (ecosystem, name, version), each matched by
// thousands of images, against an index that does not change while the images are written.
// One goroutine's.
type affectingMemo struct {
	idx *advisory.Index
	m   map[[3]string]affectingAnswer
}

type affectingAnswer struct {
	vulns []*advisory.Vulnerability
	err   error
}

func newAffectingMemo(idx *advisory.Index) *affectingMemo {
	return &affectingMemo{idx: idx, m: map[[3]string]affectingAnswer{}}
}

// Affecting is idx.Affecting. The matcher only reads the answer, so one answer is shared.
func (a *affectingMemo) Affecting(ecosystem, name, version string) ([]*advisory.Vulnerability, error) {
	k := [3]string{ecosystem, name, version}
	ans, ok := a.m[k]
	if !ok {
		ans.vulns, ans.err = a.idx.Affecting(ecosystem, name, version)
		a.m[k] = ans
	}
	return ans.vulns, ans.err
}

// storedDetail is what the store keeps of a finding's detail: its facts and fix state
// (sqlite.FindingColumnsOfDetail), its parts (sqlite.SplitDetailParts), and the loader's keys
// of the texts it is split into, computed where the images are prepared, not in the writer.
type storedDetail struct {
	facts                   sqlite.FindingFacts
	fix                     string
	parts                   sqlite.DetailParts
	head, tail, layer, body textKey
	layerDigest             textKey
	factsKey                textKey // of facts (factsKey)
}

// factsKey is the loader's key of a finding's facts.
func factsKey(seeds [2]maphash.Seed, f sqlite.FindingFacts) textKey {
	var k textKey
	for i, seed := range seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		for _, s := range []string{f.Title, f.Source, f.VendorSeverity, f.Aliases, f.Related} {
			_, _ = h.WriteString(s)
			_ = h.WriteByte(0)
		}
		k[i] = h.Sum64()
	}
	return k
}

// findingTemplates keeps the findings of one repository's images, as Snapshot wrote them
// and as the store splits their details, with each image's own layer digests replaced by
// placeholders: from one build to the next most of an image's findings are those of the
// image before with only the layer digests changed (the dependencies that moved are a few),
// and the base's findings are the same. A finding is known by its vulnerability and its
// packages as matched (their JSON with the placeholders): with the advisory index fixed,
// the packages decide the rest of the match (the advisories that affect them, in the order
// the inventory lists them, which one repository's images keep). Splitting a detail treats
// a layer digest as an opaque string, so the split of the detail with placeholders is the
// split of the real detail with placeholders. What a template gives is checked by the setup
// with LADING_BENCH_NOW, which writes the same store as without templates.
// Used by one goroutine, for one repository's images.
type findingTemplates struct {
	seeds        [2]maphash.Seed
	templates    map[textKey]findingTemplate
	placeholders []string
	detail       []byte // the last finding's detail, made from its template
	seen, split  int64  // findings prepared, and those of them made by Snapshot and split
}

// findingTemplate is a finding of an image before, its detail and its split with
// placeholders, and which texts of the split hold them.
type findingTemplate struct {
	f      store.Finding // without its detail
	detail []byte
	at     []markAt // where detail holds placeholders
	d      *storedDetail
	fields uint32 // bit i: text i of storedDetail.texts holds a placeholder
}

// markAt is a placeholder in a template's detail: at offset off, of own layer layer.
type markAt struct{ off, layer int }

func newFindingTemplates(seeds [2]maphash.Seed) *findingTemplates {
	return &findingTemplates{seeds: seeds, templates: map[textKey]findingTemplate{}}
}

// factsTexts are the bits of the facts among storedDetail.texts.
const factsTexts = 0b11111 << 6

// texts are the texts of d that a layer digest may be in, each with its key when it has one.
func (d *storedDetail) texts() [12]struct {
	s *string
	k *textKey
} {
	p, f := &d.parts, &d.facts
	type text = struct {
		s *string
		k *textKey
	}
	return [12]text{{&p.Head, &d.head}, {&p.Tail, &d.tail}, {&p.Body, &d.body}, {&p.Layer, &d.layer},
		{&p.LayerDigest, &d.layerDigest}, {&p.Whole, nil}, {&f.Title, nil}, {&f.Source, nil}, {&f.VendorSeverity, nil},
		{&f.Aliases, nil}, {&f.Related, nil}, {&d.fix, nil}}
}

// marks returns the placeholders of an image's n own layers, number i standing for layer i in
// a template: as long as a digest, of characters JSON writes as they are, and no digest.
func (t *findingTemplates) marks(n int) []string {
	for len(t.placeholders) < n {
		t.placeholders = append(t.placeholders, fmt.Sprintf("sha256:%s%08d", strings.Repeat("~", 56), len(t.placeholders)))
	}
	return t.placeholders[:n]
}

// replaceEach returns b with every from[i] replaced by to[i] (of the same length), copied only
// when it changes. It looks for the last 48 bytes of each: a digest's begin ("sha256:") is
// common in a detail, and bytes.Index is fastest for patterns of up to 63 bytes.
func replaceEach(b []byte, from, to []string) []byte {
	copied := false
	for i, old := range from {
		tail := []byte(old[len(old)-48:])
		for off := 0; ; {
			j := bytes.Index(b[off:], tail)
			if j < 0 {
				break
			}
			start := off + j - (len(old) - 48)
			if start < 0 || string(b[start:start+len(old)]) != old {
				off += j + 1
				continue
			}
			if !copied {
				b, copied = bytes.Clone(b), true
			}
			copy(b[start:], to[i])
			off = start + len(old)
		}
	}
	return b
}

// finding returns the finding of match m of the image with digest dgst, and its detail as the
// store splits it. own are the digests of the image's own layers, now the scan's time;
// snapshot and split make and split a finding no image before had with other digests.
func (t *findingTemplates) finding(m match.Finding, dgst string, own []string, now time.Time, origin events.Origin,
	snapshot func(match.Finding) (store.Finding, error), split func([]byte) (*storedDetail, error)) (store.Finding, *storedDetail, error) {
	marks := t.marks(len(own))
	k := templateKey(t.seeds, m, own)
	t.seen++
	if tmpl, ok := t.templates[k]; ok {
		f := tmpl.f
		detail := tmpl.detail
		if len(tmpl.at) > 0 {
			// Only the fingerprint reads it: made in one buffer, reused.
			t.detail = append(t.detail[:0], tmpl.detail...)
			for _, at := range tmpl.at {
				if at.layer < len(own) {
					copy(t.detail[at.off:], own[at.layer])
				}
			}
			detail = t.detail
		}
		f.Digest, f.Fingerprint = dgst, scanning.FindingFingerprint(detail)
		f.ARN = scanning.FindingARN(origin, f.Repository, f.Digest, f.ScanType, f.VulnerabilityID)
		f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = now, now, now
		if tmpl.fields == 0 {
			return f, tmpl.d, nil // shared: no text of it is the image's own
		}
		d := *tmpl.d
		for i, text := range d.texts() {
			if tmpl.fields&(1<<i) == 0 {
				continue
			}
			for j, dg := range own {
				*text.s = strings.ReplaceAll(*text.s, marks[j], dg)
			}
			if text.k != nil {
				*text.k = keyOfText(t.seeds, *text.s)
			}
		}
		if tmpl.fields&factsTexts != 0 {
			d.factsKey = factsKey(t.seeds, d.facts)
		}
		return f, &d, nil
	}
	t.split++
	f, err := snapshot(m)
	if err != nil {
		return f, nil, err
	}
	d, err := split(f.Detail)
	if err != nil {
		return f, nil, err
	}
	tmpl := findingTemplate{f: f, detail: replaceEach(f.Detail, own, marks), d: d}
	tmpl.at = marksIn(tmpl.detail, marks)
	tmpl.f.Detail = nil
	c := *d
	for i, text := range c.texts() {
		for j, dg := range own {
			if strings.Contains(*text.s, dg) {
				*text.s = strings.ReplaceAll(*text.s, dg, marks[j])
				tmpl.fields |= 1 << i
			}
		}
	}
	if tmpl.fields != 0 {
		tmpl.d = &c
	}
	t.templates[k] = tmpl
	return f, d, nil
}

// marksIn returns where b holds each of marks (of the same length, none overlapping another).
func marksIn(b []byte, marks []string) []markAt {
	var at []markAt
	for j, mark := range marks {
		for off := 0; ; {
			i := bytes.Index(b[off:], []byte(mark))
			if i < 0 {
				break
			}
			at = append(at, markAt{off + i, j})
			off += i + len(mark)
		}
	}
	return at
}

// templateKey is the key of a template: m's vulnerability and packages as matched, each own
// layer digest in them written as its number among own. Written field by field, not as their
// JSON (which was a sixth of preparing an image); TestTemplateKeyTellsEveryField fails when a
// field is added to the packages and not written here.
func templateKey(seeds [2]maphash.Seed, m match.Finding, own []string) textKey {
	var k textKey
	for i, seed := range seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		writeString(&h, m.VulnerabilityID)
		writeInt(&h, len(m.Packages))
		for _, p := range m.Packages {
			for _, s := range []string{p.Name, p.Version, p.Release, p.Arch, p.Ecosystem, p.PackageManager, p.SourceName,
				p.SourceVersion, p.PURL, p.FilePath, p.CreatedBy, p.FixedInVersion, p.Remediation, p.Reachability} {
				writeString(&h, s)
			}
			writeInt(&h, p.Epoch)
			if j := slices.Index(own, p.Layer); j >= 0 {
				writeInt(&h, j)
			} else {
				writeInt(&h, -1)
				writeString(&h, p.Layer)
			}
			// nil and empty alike, as their JSON (omitempty) writes neither.
			writeInt(&h, len(p.LanguagePackages))
			for _, lp := range p.LanguagePackages {
				for _, s := range []string{lp.Ecosystem, lp.Name, lp.Version, lp.Path} {
					writeString(&h, s)
				}
			}
		}
		k[i] = h.Sum64()
	}
	return k
}

// writeString writes s with its length, so that no two lists of strings write the same bytes.
func writeString(h *maphash.Hash, s string) {
	writeInt(h, len(s))
	_, _ = h.WriteString(s)
}

func writeInt(h *maphash.Hash, n int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	_, _ = h.Write(b[:])
}
