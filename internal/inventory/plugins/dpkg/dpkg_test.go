package dpkg

import (
	"strings"
	"testing"
)

func TestSplitVersion(t *testing.T) {
	tests := []struct {
		version  string
		epoch    int
		revision string
	}{
		{"5.2.15-2+b13", 0, "2+b13"},
		{"1:1.2.13.dfsg-1", 1, "1"},
		{"1:4.13+dfsg1-1+deb12u2", 1, "1+deb12u2"},
		{"2.6.1", 0, ""},
		{"x:1.0-1", 0, "1"},
	}
	for _, tt := range tests {
		if epoch, revision := splitVersion(tt.version); epoch != tt.epoch || revision != tt.revision {
			t.Errorf("splitVersion(%s) = %d, %q; want %d, %q", tt.version, epoch, revision, tt.epoch, tt.revision)
		}
	}
}

func FuzzSplitVersion(f *testing.F) {
	f.Add("1:4.13+dfsg1-1+deb12u2")
	f.Fuzz(func(t *testing.T, v string) {
		if _, revision := splitVersion(v); !strings.HasSuffix(v, revision) {
			t.Fatalf("revision %q is not the end of %q", revision, v)
		}
	})
}
