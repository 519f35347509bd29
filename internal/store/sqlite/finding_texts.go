package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
	head = string(detail[len(detailOpen):k])
	packages = string(detail[k+len(detailPackages) : j])
	tail = string(detail[j+len(detailImage) : len(detail)-len(detailClose)])
	if joinDetail(head, packages, tail) != string(detail) {
		return "", "", "", false
	}
	return head, packages, tail, true
}

// joinDetail is the detail of its three parts, as finding_detail_view joins them.
func joinDetail(head, packages, tail string) string {
	return detailOpen + head + detailPackages + packages + detailImage + tail + detailClose
}

// FindingDetailStatements are the statements that store a finding's detail: TextID's lookup
// and insert of a text, and the detail row's upsert (finding id, head id, tail id, layer id,
// detail; ids NULL when the detail is stored whole, the layer id when no layer text is apart). Exported for loaders that fill a store directly.
const (
	selectFindingText  = `SELECT id FROM finding_texts WHERE text = ?`
	insertFindingText  = `INSERT INTO finding_texts(text) VALUES (?) RETURNING id`
	UpsertFindingParts = `INSERT INTO finding_details(finding_id, head_id, tail_id, layer_id, detail) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT(finding_id) DO UPDATE SET head_id = excluded.head_id, tail_id = excluded.tail_id, layer_id = excluded.layer_id,
		detail = excluded.detail`
	// InsertFindingText writes a text under a chosen id (loaders numbering texts themselves).
	InsertFindingText = `INSERT INTO finding_texts(id, text) VALUES (?, ?)`
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
// scanner's JSON writes them, leaving layerMark in each place it stood; ok is false when there
// is none to take (the part is then stored as it is). Replacing the marks by the layer gives
// the part back byte for byte. Exported for loaders that fill a store directly (benchmarks).
func SplitDetailLayer(packages string) (layer, rest string, ok bool) {
	var pkgs []struct {
		Layer     string  `json:"sourceLayerHash"`
		CreatedBy *string `json:"createdBy"`
	}
	if strings.Contains(packages, layerMark) || json.Unmarshal([]byte(packages), &pkgs) != nil || len(pkgs) == 0 || pkgs[0].Layer == "" {
		return "", packages, false
	}
	hash, err := json.Marshal(pkgs[0].Layer)
	if err != nil {
		return "", packages, false
	}
	layer = `,"sourceLayerHash":` + string(hash)
	if c := pkgs[0].CreatedBy; c != nil {
		by, err := json.Marshal(*c)
		if err != nil {
			return "", packages, false
		}
		layer += `,"createdBy":` + string(by)
	}
	rest = strings.ReplaceAll(packages, layer, layerMark)
	if rest == packages || strings.ReplaceAll(rest, layerMark, layer) != packages {
		return "", packages, false
	}
	return layer, rest, true
}

// putFindingDetail stores the detail of finding id, its shared parts once.
func putFindingDetail(ctx context.Context, q rowQuerier, id int64, detail []byte) error {
	head, packages, tail, ok := SplitDetail(detail)
	if !ok {
		_, err := q.ExecContext(ctx, UpsertFindingParts, id, nil, nil, nil, string(detail))
		return err
	}
	headID, err := findingTextID(ctx, q, head)
	if err != nil {
		return fmt.Errorf("vulnerability text: %w", err)
	}
	tailID, err := findingTextID(ctx, q, tail)
	if err != nil {
		return fmt.Errorf("image text: %w", err)
	}
	var layerID any
	if layer, rest, ok := SplitDetailLayer(packages); ok {
		if layerID, err = findingTextID(ctx, q, layer); err != nil {
			return fmt.Errorf("layer text: %w", err)
		}
		packages = rest
	}
	_, err = q.ExecContext(ctx, UpsertFindingParts, id, headID, tailID, layerID, packages)
	return err
}
