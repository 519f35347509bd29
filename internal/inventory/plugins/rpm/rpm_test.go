package rpm

import (
	"strings"
	"testing"
)

func TestSplitSourceRPM(t *testing.T) {
	tests := []struct{ srpm, name, version string }{
		{"openssl-3.0.7-27.el9.src.rpm", "openssl", "3.0.7-27.el9"},
		{"java-17-openjdk-17.0.9.0.9-2.el9.src.rpm", "java-17-openjdk", "17.0.9.0.9-2.el9"},
		{"hello-0.0.1-rls.nosrc.rpm", "hello", "0.0.1-rls"},
		{"nodash.src.rpm", "", ""},
		{"-1-2.src.rpm", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if name, version := splitSourceRPM(tt.srpm); name != tt.name || version != tt.version {
			t.Errorf("splitSourceRPM(%s) = %q, %q; want %q, %q", tt.srpm, name, version, tt.name, tt.version)
		}
	}
}

func FuzzSplitSourceRPM(f *testing.F) {
	f.Add("openssl-3.0.7-27.el9.src.rpm")
	f.Fuzz(func(t *testing.T, srpm string) {
		name, version := splitSourceRPM(srpm)
		if (name == "") != (version == "") || name != "" && !strings.HasPrefix(srpm, name+"-"+version) {
			t.Fatalf("splitSourceRPM(%q) = %q, %q", srpm, name, version)
		}
	})
}
