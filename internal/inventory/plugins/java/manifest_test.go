package java

import (
	"strings"
	"testing"
)

func TestParseManifestIsLinear(t *testing.T) {
	// 1 MiB of continuation lines: the value is cut, and parsing stays a single pass.
	var b strings.Builder
	b.WriteString("Manifest-Version: 1.0\nImplementation-Version: 2.14.1\nX-Long: a\n")
	for b.Len() < 1<<20 {
		b.WriteString(" bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n")
	}
	b.WriteString("Bundle-Version: 9\n\nName: after-the-main-section\nImplementation-Version: 0\n")
	m := parseManifest([]byte(b.String()))
	if m["Implementation-Version"] != "2.14.1" || m["Bundle-Version"] != "9" || m["Manifest-Version"] != "1.0" {
		t.Fatalf("%v", map[string]string{"iv": m["Implementation-Version"], "bv": m["Bundle-Version"]})
	}
	if n := len(m["X-Long"]); n == 0 || n > 4<<10+1 {
		t.Fatalf("long value kept at %d bytes", n)
	}
	// CRLF line ends and continuation across them.
	m = parseManifest([]byte("Implementation-Title: log4j\r\n -core\r\nImplementation-Version: 2.17.1\r\n\r\n"))
	if m["Implementation-Title"] != "log4j-core" || m["Implementation-Version"] != "2.17.1" {
		t.Fatalf("%v", m)
	}
}
