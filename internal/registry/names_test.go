package registry

import (
	"strings"
	"testing"
)

func TestValidRepositoryName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ab", true},
		{"a", false},
		{"library/ubuntu", true},
		{"my-app/web.front_end", true},
		{"a__b", true},
		{"a___b", false},
		{"a--b", true},
		{"Upper", false},
		{"trailing/", false},
		{"/leading", false},
		{"double//slash", false},
		{"dot.", false},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
		{"a/../b", false},
	} {
		if got := ValidRepositoryName(tc.name); got != tc.ok {
			t.Errorf("%q: got %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func FuzzValidRepositoryName(f *testing.F) {
	for _, s := range []string{"ab", "a/b", "a__b", "A", "a..b", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !ValidRepositoryName(name) {
			return
		}
		if len(name) < 2 || len(name) > 256 || strings.ContainsAny(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ:@ ") ||
			strings.Contains(name, "//") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "..") {
			t.Fatalf("accepted %q", name)
		}
	})
}
