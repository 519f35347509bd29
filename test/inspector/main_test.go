// Package inspector_test drives Lading's Inspector2 API end to end: a real `lading serve`, a real
// image pushed with skopeo and scanned, and the AWS CLI and the AWS SDK for Go (inspector2 and
// ecr) as clients.
package inspector_test

import (
	"os"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// ladingBin is built once for the package, by TestMain.
var ladingBin string

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &ladingBin)) }
