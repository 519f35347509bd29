package scanning

import (
	"fmt"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

// TestLayerMemoKeepsTheLastUsed: the memo holds at most its size, drops the oldest first, and
// tells modes and fingerprints apart.
func TestLayerMemoKeepsTheLastUsed(t *testing.T) {
	lm := newLayerMemo(2)
	key := func(i int) memoKey { return memoKey{fmt.Sprintf("sha256:%d", i), inventory.ModeEnhanced, "f1"} }
	for i := range 3 {
		lm.put(key(i), &inventory.LayerInventory{Digest: key(i).digest})
	}
	for _, tc := range []struct {
		key  memoKey
		want bool
	}{
		{key(0), false}, // the oldest, dropped
		{key(1), true},
		{key(2), true},
		{memoKey{"sha256:2", inventory.ModeBasic, "f1"}, false},
		{memoKey{"sha256:2", inventory.ModeEnhanced, "f2"}, false},
	} {
		li, ok := lm.get(tc.key)
		if ok != tc.want || (ok && li.Digest != tc.key.digest) {
			t.Errorf("get(%v) = %v, %v; want found %v", tc.key, li, ok, tc.want)
		}
	}
	var none *layerMemo
	if _, ok := none.get(key(1)); ok {
		t.Error("a nil memo found something")
	}
}
