package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// postingsOf reads inventory_key_postings whole, decoded.
func postingsOf(t *testing.T, db *DB) map[posting][]int64 {
	t.Helper()
	rows, err := db.Reader().QueryContext(context.Background(), "SELECT key_id, chunk, part_ids FROM inventory_key_postings")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[posting][]int64{}
	for rows.Next() {
		var p posting
		var b []byte
		if err := rows.Scan(&p.key, &p.chunk, &b); err != nil {
			t.Fatal(err)
		}
		if got[p], err = store.DecodePartIDs(nil, p.chunk, b); err != nil {
			t.Fatalf("postings of %+v: %v", p, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// checkPostings compares inventory_key_postings with what the stored parts' keys
// (inventory_parts.key_ids) make of it: every pair of a key and a part holding it, no other,
// and no row without ids.
func checkPostings(t *testing.T, stage string, db *DB) {
	t.Helper()
	want := map[posting][]int64{}
	rows, err := db.Reader().QueryContext(context.Background(), "SELECT id, key_ids FROM inventory_parts WHERE key_ids IS NOT NULL ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		keys, err := store.DecodeKeyIDs(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			p := posting{key: k, chunk: store.PartChunk(id)}
			want[p] = append(want[p], id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := postingsOf(t, db); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("%s: postings %v, want %v", stage, got, want)
	}
}

// TestInventoryKeyPostingsFollowParts writes, replaces and prunes inventories whose parts'
// ids span chunks, checking the posting rows against the parts' keys at each step: a part
// stored adds its id to its keys' rows, a part deleted takes it from them, and a row left
// without ids goes.
func TestInventoryKeyPostingsFollowParts(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	// The next parts are numbered from just below a chunk's end.
	first := int64(3<<store.PartChunkBits - 3)
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO inventory_parts(id, hash, data, key_ids) VALUES (?, x'00', 'filler', x'')", first-1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	lodash, react := store.PackageKey{Ecosystem: "npm", Name: "lodash"}, store.PackageKey{Ecosystem: "npm", Name: "react"}
	part := func(s string, keys ...store.PackageKey) store.InventoryPart {
		sum := sha256.Sum256([]byte(s))
		return store.InventoryPart{Hash: sum[:], Data: []byte(s), Keys: keys}
	}
	var parts []store.InventoryPart
	for i := range 6 {
		keys := []store.PackageKey{lodash}
		if i%2 == 1 {
			keys = append(keys, react)
		}
		parts = append(parts, part(fmt.Sprint("part ", i), keys...))
	}
	put := func(dgst string, parts ...store.InventoryPart) {
		t.Helper()
		if _, err := db.PutImageInventory(ctx, dgst, "ENHANCED", "fp", "", nil, 0, []byte("head"), parts); err != nil {
			t.Fatal(err)
		}
	}
	put(fakeDigest("a"), parts...)
	put(fakeDigest("b"), parts[1], parts[4])
	checkPostings(t, "stored", db)
	if got := postingsOf(t, db); len(got) != 4 {
		t.Errorf("%d posting rows, want lodash's and react's in two chunks: %v", len(got), got)
	}
	// a keeps parts 0 and 1: parts 2, 3 and 5 go (4 stays with b), and react's row of the
	// second chunk with them.
	put(fakeDigest("a"), parts[0], parts[1])
	checkPostings(t, "a replaced", db)
	if got := postingsOf(t, db); len(got) != 3 {
		t.Errorf("%d posting rows, want lodash's two and react's in the first chunk: %v", len(got), got)
	}
	if res, err := db.PruneInventories(ctx, time.Now().Add(time.Hour), false); err != nil || res.ImageInventories != 2 {
		t.Fatalf("PruneInventories = %+v, %v; want 2 inventories", res, err)
	}
	if got := postingsOf(t, db); len(got) != 0 {
		t.Errorf("after pruning all: postings %v, want none", got)
	}
	// Part 5 back, in an id of its own (or the one it had): its keys only.
	put(fakeDigest("c"), parts[5])
	checkPostings(t, "stored again", db)
}

// TestInventoryKeyPostingsCorrupt: a posting list that does not decode fails the reads and
// the writes that need it, not answers without its parts.
func TestInventoryKeyPostingsCorrupt(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	lodash := store.PackageKey{Ecosystem: "npm", Name: "lodash"}
	part := func(s string) store.InventoryPart {
		sum := sha256.Sum256([]byte(s))
		return store.InventoryPart{Hash: sum[:], Data: []byte(s), Keys: []store.PackageKey{lodash}}
	}
	if _, err := db.PutImageInventory(ctx, fakeDigest("a"), "ENHANCED", "fp", "", nil, 0, []byte("head"), []store.InventoryPart{part("a")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE inventory_key_postings SET part_ids = x'80'")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	wantCorrupt := func(op string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "corrupt part ids") {
			t.Errorf("%s: %v, want the corrupt postings' error", op, err)
		}
	}
	_, err := db.InventoryPartsHolding(ctx, []store.PackageKey{lodash})
	wantCorrupt("InventoryPartsHolding", err)
	_, err = db.InventoriesHolding(ctx, "ENHANCED", []store.PackageKey{lodash})
	wantCorrupt("InventoriesHolding", err)
	_, err = db.PutImageInventory(ctx, fakeDigest("b"), "ENHANCED", "fp", "", nil, 0, []byte("head"), []store.InventoryPart{part("b")})
	wantCorrupt("PutImageInventory adding a part", err)
	_, err = db.PutImageInventory(ctx, fakeDigest("a"), "ENHANCED", "fp", "", nil, 0, []byte("head"), nil)
	wantCorrupt("PutImageInventory dropping a part", err)
}

// TestMigrationToInventoryKeyPostings upgrades a store holding part keys one row a pair (0051)
// to posting lists (0054), converted in SQL: the rows must be what store.EncodePartIDs makes
// of the pairs, across chunks and with deltas of one and two bytes.
func TestMigrationToInventoryKeyPostings(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 53)
	span := int64(1) << store.PartChunkBits
	pairs := map[int64][]int64{
		1: {1, 2, 3, 130, span - 1, span, span + 1, 2*span - 1, 5 * span, 5*span + 200, 9*span + 129},
		2: {span - 1},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		pairs[3] = append(pairs[3], 1+rnd.Int64N(20*span))
	}
	for range 300 {
		pairs[4] = append(pairs[4], 1+rnd.Int64N(20*span))
	}
	want := map[posting][]int64{}
	partKeys := map[int64][]int64{}
	for k, ids := range pairs {
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			p := posting{key: k, chunk: store.PartChunk(id)}
			want[p] = append(want[p], id)
			partKeys[id] = append(partKeys[id], k)
		}
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range pairs {
		if _, err := tx.ExecContext(ctx, "INSERT INTO package_keys(id, ecosystem, name) VALUES (?, 'npm', ?)", k, fmt.Sprint("package ", k)); err != nil {
			t.Fatal(err)
		}
	}
	for id, keys := range partKeys {
		slices.Sort(keys)
		sum := sha256.Sum256([]byte(fmt.Sprint(id)))
		if _, err := tx.ExecContext(ctx, "INSERT INTO inventory_parts(id, hash, data, key_ids) VALUES (?, ?, 'part', ?)", id, sum[:], store.EncodeKeyIDs(keys)); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, "INSERT INTO inventory_part_keys(key_id, part_id) VALUES (?, ?)", k, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db := reopen()
	got := map[posting][]byte{}
	rows, err := db.Reader().QueryContext(ctx, "SELECT key_id, chunk, part_ids FROM inventory_key_postings")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p posting
		var b []byte
		if err := rows.Scan(&p.key, &p.chunk, &b); err != nil {
			t.Fatal(err)
		}
		got[p] = b
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d posting rows, want %d", len(got), len(want))
	}
	for p, ids := range want {
		if b := store.EncodePartIDs(p.chunk, ids); !bytes.Equal(got[p], b) {
			t.Errorf("key %d chunk %d: %x, want %x (%v)", p.key, p.chunk, got[p], b, ids)
		}
	}
	var old int
	if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'inventory_part_keys'").Scan(&old); err != nil || old != 0 {
		t.Errorf("inventory_part_keys left (%d, %v)", old, err)
	}
	hs, err := db.InventoryPartsHolding(ctx, []store.PackageKey{{Ecosystem: "npm", Name: "package 1"}})
	if err != nil || len(hs) != len(pairs[1]) {
		t.Errorf("InventoryPartsHolding(package 1) = %d parts, %v; want %d", len(hs), err, len(pairs[1]))
	}
	checkPostings(t, "migrated", db)
}
