package kev

import (
	"errors"
	"testing"
	"time"
)

func TestEmbedded(t *testing.T) {
	c, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "2025.08.25" || c.Len() != 1404 {
		t.Fatalf("version %q, %d entries", c.Version, c.Len())
	}
	e, ok := c.Lookup("GHSA-jfh8-c2jp-5v3q", "CVE-2021-44228")
	if !ok || e.CVEID != "CVE-2021-44228" || !e.DateAdded.Equal(time.Date(2021, 12, 10, 0, 0, 0, 0, time.UTC)) ||
		!e.DueDate.Equal(time.Date(2021, 12, 24, 0, 0, 0, 0, time.UTC)) || e.RequiredAction == "" || len(e.CWEs) != 3 {
		t.Fatalf("Log4Shell: %+v, %v", e, ok)
	}
	if c.Exploited("CVE-2022-1471") {
		t.Error("snakeyaml's CVE is not in the catalogue")
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		ok        bool
		n         int
	}{
		{"empty catalogue", `{"catalogVersion":"1","vulnerabilities":[]}`, true, 0},
		{"one entry", `{"vulnerabilities":[{"cveID":"CVE-2020-12345","dateAdded":"2020-01-02"}]}`, true, 1},
		{"not JSON", `{`, false, 0},
		{"bad id", `{"vulnerabilities":[{"cveID":"GHSA-1","dateAdded":"2020-01-02"}]}`, false, 0},
		{"bad date", `{"vulnerabilities":[{"cveID":"CVE-2020-12345","dateAdded":"02/01/2020"}]}`, false, 0},
		{"no date added", `{"vulnerabilities":[{"cveID":"CVE-2020-12345"}]}`, false, 0},
		{"duplicate", `{"vulnerabilities":[{"cveID":"CVE-2020-12345","dateAdded":"2020-01-02"},{"cveID":"CVE-2020-12345","dateAdded":"2020-01-02"}]}`, false, 0},
		{"bad release", `{"dateReleased":"yesterday","vulnerabilities":[]}`, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.raw))
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			if err == nil && c.Len() != tc.n {
				t.Errorf("%d entries, want %d", c.Len(), tc.n)
			}
		})
	}
}

func TestNilCatalog(t *testing.T) {
	var c *Catalog
	if c.Exploited("CVE-2021-44228") || c.Len() != 0 || c.IDs() != nil {
		t.Error("a nil catalogue lists something")
	}
}

// The catalogue is a feed a later version will fetch: untrusted input.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"catalogVersion":"1","dateReleased":"2025-08-25T17:04:19.9796Z","vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10","dueDate":"2021-12-24","cwes":["CWE-20"]}]}`))
	f.Add([]byte(`{"vulnerabilities":[{"cveID":"CVE-1-1"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw)
		if err != nil {
			return
		}
		for _, id := range c.IDs() {
			if e, ok := c.Lookup(id); !ok || e.CVEID != id || e.DateAdded.IsZero() {
				t.Fatalf("listed %s but Lookup gives %+v, %v", id, e, ok)
			}
		}
	})
}
