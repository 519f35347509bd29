package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// A finding's detail is stored in three parts (0032_finding_texts.sql): the vulnerability's
// text (head) and the image's facts (tail), each stored once in finding_texts, and the
// finding's own packages in finding_details. These are the bytes between the parts.
const (
	detailOpen     = `{"finding":{`
	detailPackages = `,"vulnerablePackages":`
	detailImage    = `},"image":`
	detailClose    = `}`
)

// SplitDetail splits a finding's detail into the vulnerability's text, the finding's own
// packages and the image's facts, such that joinDetail gives the detail back byte for byte;
// ok is false for a detail of another shape (stored whole). The markers cannot occur inside a
// JSON string (a quote there is escaped), so the first of each is the member it names.
// Exported for loaders that fill a store directly (benchmarks).
func SplitDetail(detail []byte) (head, packages, tail string, ok bool) {
	if !bytes.HasPrefix(detail, []byte(detailOpen)) || !bytes.HasSuffix(detail, []byte(detailClose)) {
		return "", "", "", false
	}
	k := bytes.Index(detail, []byte(detailPackages))
	j := bytes.Index(detail, []byte(detailImage))
	if k < 0 || j < k+len(detailPackages) || j+len(detailImage) > len(detail)-len(detailClose) {
		return "", "", "", false
	}
	// One copy of the detail, sliced: the three parts join back to it by construction (the
	// checks above keep them in order within it).
	whole := string(detail)
	head = whole[len(detailOpen):k]
	packages = whole[k+len(detailPackages) : j]
	tail = whole[j+len(detailImage) : len(whole)-len(detailClose)]
	return head, packages, tail, true
}

// FindingDetailStatements are the statements that store a finding's detail: TextID's lookup
// and insert of a text, and the detail row's upsert (0049: finding id, head id, tail id, layer
// id, package set id, the layer's digest (written first with InsertFindingLayer), whole
// detail; the ids NULL when the detail is stored whole, the layer's when no layer text is
// apart). Exported for loaders that fill a store directly.
const (
	selectFindingText  = `SELECT id FROM finding_texts WHERE text = ?`
	insertFindingText  = `INSERT INTO finding_texts(text) VALUES (?) RETURNING id`
	UpsertFindingParts = `INSERT INTO finding_details(finding_id, head_id, tail_id, layer_id, set_id, package_layer, detail)
	VALUES (?1, ?2, ?3, ?4, ?5, (SELECT id FROM finding_layers WHERE digest = ?6), ?7)
	ON CONFLICT(finding_id) DO UPDATE SET head_id = excluded.head_id, tail_id = excluded.tail_id, layer_id = excluded.layer_id,
		set_id = excluded.set_id, package_layer = excluded.package_layer, detail = excluded.detail`
	InsertFindingLayer = `INSERT INTO finding_layers(digest) VALUES (?) ON CONFLICT DO NOTHING`
	// InsertFindingText writes a text under a chosen id (loaders numbering texts themselves).
	InsertFindingText = `INSERT INTO finding_texts(id, text) VALUES (?, ?)`
	// InsertPackageSet writes a package set under a chosen id (loaders numbering sets
	// themselves), to be followed by IndexPackageSetQueries.
	InsertPackageSet = `INSERT INTO finding_package_sets(id, body) VALUES (?, ?)`
)

// rowQuerier runs a query for one row and statements (txStatements).
type rowQuerier interface {
	execer
	queryRow(ctx context.Context, query string, args ...any) rowScanner
}

// findingTextID returns the id of text in finding_texts, writing it if new.
func findingTextID(ctx context.Context, q rowQuerier, text string) (int64, error) {
	return dictionaryID(ctx, q, selectFindingText, insertFindingText, text)
}

// layerMark stands in a stored detail for its layer text (0046_finding_detail_layers.sql): a
// raw control character, which JSON never holds unescaped.
const layerMark = "\x01"

// SplitDetailLayer takes out of a finding's packages part (SplitDetail) the text naming its
// first package's layer, ',"sourceLayerHash":"…"' and the ',"createdBy":"…"' after it, as the
// scanner's JSON writes them, leaving layerMark in each place it stood; digest is the layer's
// digest. ok is false when there is none to take (the part is then stored as it is). Replacing
// the marks by the layer gives the part back byte for byte. Every package's layer is a string
// (or absent) when ok, which the package rows of a set rely on (findings_index.go). Exported
// for loaders that fill a store directly (benchmarks).
func SplitDetailLayer(packages string) (layer, digest, rest string, ok bool) {
	if strings.Contains(packages, layerMark) || !gjson.Valid(packages) {
		return "", "", packages, false
	}
	list := gjson.Parse(packages)
	if !list.IsArray() {
		return "", "", packages, false
	}
	// Every package is an object (or null) whose layer and createdBy are strings (or null, or
	// absent); keys are matched exactly, the first of a repeated one counts, as json_extract
	// reads them, and a key in escapes leaves the part whole.
	var first struct {
		layer     string
		createdBy *string
	}
	ok = true
	n := 0
	list.ForEach(func(_, p gjson.Result) bool {
		n++
		var seenLayer, seenBy bool
		if err := members(p, "detail package", func(key string, v gjson.Result) {
			if !ok || (key != "sourceLayerHash" && key != "createdBy") {
				return
			}
			if v.Type != gjson.String && v.Type != gjson.Null {
				ok = false
				return
			}
			if n == 1 && key == "sourceLayerHash" && !seenLayer {
				first.layer = v.Str
			}
			if n == 1 && key == "createdBy" && !seenBy && v.Type == gjson.String {
				by := v.Str
				first.createdBy = &by
			}
			seenLayer = seenLayer || key == "sourceLayerHash"
			seenBy = seenBy || key == "createdBy"
		}); err != nil {
			ok = false // not an object, or a key in escapes
		}
		return ok
	})
	if !ok || n == 0 || first.layer == "" {
		return "", "", packages, false
	}
	hash, err := json.Marshal(first.layer)
	if err != nil {
		return "", "", packages, false
	}
	layer = `,"sourceLayerHash":` + string(hash)
	if c := first.createdBy; c != nil {
		by, err := json.Marshal(*c)
		if err != nil {
			return "", "", packages, false
		}
		layer += `,"createdBy":` + string(by)
	}
	rest = strings.ReplaceAll(packages, layer, layerMark)
	if rest == packages || strings.ReplaceAll(rest, layerMark, layer) != packages {
		return "", "", packages, false
	}
	return layer, first.layer, rest, true
}

// ownSetMark starts the key of a package set holding one finding's rows as a statement wrote
// them (0049), not rows read from a body: a raw control character no JSON body holds.
const ownSetMark = "\x02"

// DetailParts is how a finding's detail is stored (0049): Whole is the detail when it is of
// another shape (Head, Tail empty); else the detail is Head, Body (with Layer's text marked
// when Layer is not empty) and Tail. Body names the finding's package set (HasBody false for
// none): the packages part, or for a whole detail its packages as SQLite extracts them.
type DetailParts struct {
	Whole             string
	Head, Tail, Layer string
	LayerDigest       string
	Body              string
	HasBody           bool
}

// SplitDetailParts splits a detail into DetailParts; a whole detail's body is looked up with
// wholeBody (its packages as SQLite's -> gives them, the text the set's rows are read from).
// Exported for loaders that fill a store directly (benchmarks).
func SplitDetailParts(detail []byte, wholeBody func(string) (string, bool, error)) (DetailParts, error) {
	head, packages, tail, ok := SplitDetail(detail)
	var p DetailParts
	if ok {
		if layer, digest, rest, split := SplitDetailLayer(packages); split {
			p.Layer, p.LayerDigest, packages = layer, digest, rest
		} else if strings.ContainsAny(packages, layerMark+ownSetMark) {
			ok = false // a body's 0x01 bytes are layer marks only, and 0x02 starts no body
		}
	}
	if !ok {
		p.Whole = string(detail)
		body, has, err := wholeBody(p.Whole)
		p.Body, p.HasBody = body, has
		return p, err
	}
	p.Head, p.Tail, p.Body, p.HasBody = head, tail, packages, true
	return p, nil
}

// detailIDs remembers, for one write of a target's findings, the ids of the texts and package
// sets looked up and the layer digests written: the image's text is the same in all of them,
// and a vulnerability's and a layer's often.
type detailIDs struct {
	texts, sets map[string]int64
	layers      map[string]bool
	// unstored are texts looked up ahead and not stored before the transaction: unless the
	// transaction wrote them since (then in texts), they are inserted without a lookup.
	unstored map[string]bool
}

func newDetailIDs() *detailIDs {
	return &detailIDs{texts: map[string]int64{}, sets: map[string]int64{}, layers: map[string]bool{}, unstored: map[string]bool{}}
}

// texts are the parts' texts stored in finding_texts by id: head, tail and layer ("" for none).
func (p DetailParts) texts() [3]string { return [3]string{p.Head, p.Tail, p.Layer} }

// known records the ids of p's texts (DetailParts.texts) looked up ahead in the transaction
// (prepareDetails; 0: not stored before it).
func (c *detailIDs) known(p DetailParts, ids [3]int64) {
	for i, text := range p.texts() {
		switch {
		case ids[i] != 0:
			c.texts[text] = ids[i]
		case text != "":
			c.unstored[text] = true
		}
	}
}

func (c *detailIDs) text(ctx context.Context, q rowQuerier, text string) (int64, error) {
	if id, ok := c.texts[text]; ok {
		return id, nil
	}
	var id int64
	var err error
	if c.unstored[text] {
		delete(c.unstored, text)
		err = q.queryRow(ctx, insertFindingText, text).Scan(&id)
	} else {
		id, err = findingTextID(ctx, q, text)
	}
	if err == nil {
		c.texts[text] = id
	}
	return id, err
}

// splitDetail is SplitDetailParts with a whole detail's body read by q (a pure expression:
// any connection gives the same).
func splitDetail(ctx context.Context, q stateReader, detail []byte) (DetailParts, error) {
	p, err := SplitDetailParts(detail, func(whole string) (string, bool, error) {
		var body sql.NullString
		err := q.queryRow(ctx, wholeDetailBody, whole).Scan(&body)
		return body.String, body.Valid, err
	})
	if err != nil {
		return p, fmt.Errorf("detail packages: %w", err)
	}
	return p, nil
}

// putDetailParts stores the detail of finding id, split (splitDetail), its shared parts once.
func putDetailParts(ctx context.Context, q rowQuerier, c *detailIDs, id int64, p DetailParts) error {
	var err error
	var setID any
	if p.HasBody {
		sid, ok := c.sets[p.Body]
		if !ok {
			if sid, err = packageSetID(ctx, q, p.Body); err != nil {
				return fmt.Errorf("package set: %w", err)
			}
			c.sets[p.Body] = sid
		}
		setID = sid
	}
	if p.Whole != "" {
		_, err := q.ExecContext(ctx, UpsertFindingParts, id, nil, nil, nil, setID, nil, p.Whole)
		return err
	}
	headID, err := c.text(ctx, q, p.Head)
	if err != nil {
		return fmt.Errorf("vulnerability text: %w", err)
	}
	tailID, err := c.text(ctx, q, p.Tail)
	if err != nil {
		return fmt.Errorf("image text: %w", err)
	}
	var layerID, digest any
	if p.Layer != "" {
		if layerID, err = c.text(ctx, q, p.Layer); err != nil {
			return fmt.Errorf("layer text: %w", err)
		}
		if !c.layers[p.LayerDigest] {
			if _, err := q.ExecContext(ctx, InsertFindingLayer, p.LayerDigest); err != nil {
				return fmt.Errorf("layer digest: %w", err)
			}
			c.layers[p.LayerDigest] = true
		}
		digest = p.LayerDigest
	}
	_, err = q.ExecContext(ctx, UpsertFindingParts, id, headID, tailID, layerID, setID, digest, nil)
	return err
}

// packageSetID returns the id of the package set of body, writing it and its package rows
// when new.
func packageSetID(ctx context.Context, q rowQuerier, body string) (int64, error) {
	var id int64
	err := q.queryRow(ctx, selectPackageSet, body).Scan(&id)
	if !errors.Is(err, sql.ErrNoRows) {
		return id, err
	}
	if err := q.queryRow(ctx, insertPackageSet, body).Scan(&id); err != nil {
		return 0, err
	}
	for _, query := range IndexPackageSetQueries() {
		if _, err := q.ExecContext(ctx, query, id); err != nil {
			return 0, fmt.Errorf("package rows: %w", err)
		}
	}
	return id, nil
}

// unusedPackageSets are the package sets no finding's detail names any longer (their findings
// deleted or written anew); the subquery reads finding_details once.
const unusedPackageSets = `SELECT id FROM finding_package_sets WHERE id NOT IN (SELECT set_id FROM finding_details WHERE set_id IS NOT NULL)`

// PruneFindingPackageSets removes the package sets (0049) no finding names, with their package
// rows, and returns how many; with dryRun it only counts them. Garbage collection runs it
// (internal/gc): sets are shared by the findings of many images, so deleting a finding leaves
// its set for the next collection rather than looking for other holders.
// The package key lists no finding names (finding_key_sets, 0053) go with them, uncounted.
func (db *DB) PruneFindingPackageSets(ctx context.Context, dryRun bool) (int64, error) {
	var n int64
	if dryRun {
		if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM ("+unusedPackageSets+")").Scan(&n); err != nil {
			return 0, fmt.Errorf("count unused package sets: %w", err)
		}
		return n, nil
	}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS unused_sets(id INTEGER PRIMARY KEY)"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM temp.unused_sets"); err != nil {
			return err
		}
		// The package key lists no finding names (0053), not counted: few and short. package_keys
		// holds the id as text (the column's affinity), hence the cast.
		if _, err := tx.ExecContext(ctx, `DELETE FROM finding_key_sets
			WHERE id NOT IN (SELECT CAST(package_keys AS INTEGER) FROM finding_rows WHERE package_keys IS NOT NULL)`); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO temp.unused_sets "+unusedPackageSets)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM finding_set_packages WHERE set_id IN (SELECT id FROM temp.unused_sets)"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM finding_package_sets WHERE id IN (SELECT id FROM temp.unused_sets)")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune package sets: %w", err)
	}
	return n, nil
}
