// Package console_test drives the web console in a real Chromium (Debian's chromium, through
// chromedp) against a real `lading serve`: sign-in, every page, the forms, the refusals, and a
// screenshot of each page.
package console_test

import (
	"os"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// ladingBin is built once for the package, by TestMain.
var ladingBin string

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &ladingBin)) }
