// Package kev is CISA's Known Exploited Vulnerabilities catalogue: which CVEs are exploited in
// the wild, since when, and what CISA requires of federal agencies about them. Inspector says
// so on a finding (exploitAvailable YES, BatchGetFindingDetails' cisaData); so does Lading.
//
// The catalogue is compiled in (known_exploited_vulnerabilities.json, CC0; SOURCE.md says which
// version and how to update it), so a registry without network access has it. It is small
// (1,400 entries) and changes weekly at most; syncing it with the advisory database is a later
// step, which Parse already serves (it reads the feed's own format).
package kev

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

//go:embed known_exploited_vulnerabilities.json
var embedded []byte

// Entry is one exploited vulnerability of the catalogue.
type Entry struct {
	CVEID             string
	VendorProject     string
	Product           string
	VulnerabilityName string
	ShortDescription  string
	// DateAdded is when CISA listed it; DueDate when federal agencies must have acted.
	DateAdded      time.Time
	DueDate        time.Time
	RequiredAction string
	// KnownRansomwareCampaignUse is "Known" or "Unknown".
	KnownRansomwareCampaignUse string
	CWEs                       []string
}

// Catalog is a parsed catalogue, read-only once made.
type Catalog struct {
	Version  string
	Released time.Time
	entries  map[string]Entry
	ids      []string // sorted
}

// ErrInvalid wraps every reason a catalogue is refused.
var ErrInvalid = errors.New("invalid KEV catalogue")

var cveID = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)

type feed struct {
	CatalogVersion  string `json:"catalogVersion"`
	DateReleased    string `json:"dateReleased"`
	Vulnerabilities []struct {
		CVEID                      string   `json:"cveID"`
		VendorProject              string   `json:"vendorProject"`
		Product                    string   `json:"product"`
		VulnerabilityName          string   `json:"vulnerabilityName"`
		DateAdded                  string   `json:"dateAdded"`
		ShortDescription           string   `json:"shortDescription"`
		RequiredAction             string   `json:"requiredAction"`
		DueDate                    string   `json:"dueDate"`
		KnownRansomwareCampaignUse string   `json:"knownRansomwareCampaignUse"`
		CWEs                       []string `json:"cwes"`
	} `json:"vulnerabilities"`
}

// Parse reads a catalogue in CISA's JSON feed format. A catalogue with an entry whose CVE id
// or dates do not parse is refused whole: a half-read catalogue would silently say "not
// exploited" for what it dropped.
func Parse(raw []byte) (*Catalog, error) {
	var f feed
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := &Catalog{Version: f.CatalogVersion, entries: make(map[string]Entry, len(f.Vulnerabilities))}
	if f.DateReleased != "" {
		t, err := time.Parse(time.RFC3339Nano, f.DateReleased)
		if err != nil {
			return nil, fmt.Errorf("%w: dateReleased: %w", ErrInvalid, err)
		}
		c.Released = t
	}
	for i, v := range f.Vulnerabilities {
		if !cveID.MatchString(v.CVEID) {
			return nil, fmt.Errorf("%w: entry %d: cveID %q", ErrInvalid, i, v.CVEID)
		}
		added, err := parseDate(v.DateAdded, false)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: dateAdded: %w", ErrInvalid, v.CVEID, err)
		}
		due, err := parseDate(v.DueDate, true)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: dueDate: %w", ErrInvalid, v.CVEID, err)
		}
		if _, dup := c.entries[v.CVEID]; dup {
			return nil, fmt.Errorf("%w: %s is listed twice", ErrInvalid, v.CVEID)
		}
		c.entries[v.CVEID] = Entry{CVEID: v.CVEID, VendorProject: v.VendorProject, Product: v.Product, VulnerabilityName: v.VulnerabilityName,
			ShortDescription: v.ShortDescription, DateAdded: added, DueDate: due, RequiredAction: v.RequiredAction,
			KnownRansomwareCampaignUse: v.KnownRansomwareCampaignUse, CWEs: slices.Clone(v.CWEs)}
		c.ids = append(c.ids, v.CVEID)
	}
	slices.Sort(c.ids)
	return c, nil
}

func parseDate(s string, optional bool) (time.Time, error) {
	if s == "" && optional {
		return time.Time{}, nil
	}
	return time.Parse(time.DateOnly, s)
}

// Embedded parses the catalogue compiled into Lading. Each call parses it again: callers keep
// the result.
func Embedded() (*Catalog, error) { return Parse(embedded) }

// Lookup returns the entry of the first of ids the catalogue lists (a finding's vulnerability
// id, then its aliases).
func (c *Catalog) Lookup(ids ...string) (Entry, bool) {
	if c == nil {
		return Entry{}, false
	}
	for _, id := range ids {
		if e, ok := c.entries[id]; ok {
			return e, true
		}
	}
	return Entry{}, false
}

// Exploited reports whether any of ids is listed.
func (c *Catalog) Exploited(ids ...string) bool {
	_, ok := c.Lookup(ids...)
	return ok
}

// IDs lists the catalogue's CVE ids, sorted. The slice is the caller's.
func (c *Catalog) IDs() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.ids)
}

// Len is the number of entries.
func (c *Catalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.ids)
}
