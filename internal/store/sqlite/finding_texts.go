package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
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
// and insert of a text, and the detail row's upsert (finding id, head id, tail id, detail;
// ids NULL when the detail is stored whole). Exported for loaders that fill a store directly.
const (
	selectFindingText  = `SELECT id FROM finding_texts WHERE text = ?`
	insertFindingText  = `INSERT INTO finding_texts(text) VALUES (?) RETURNING id`
	UpsertFindingParts = `INSERT INTO finding_details(finding_id, head_id, tail_id, detail) VALUES (?, ?, ?, ?)
	ON CONFLICT(finding_id) DO UPDATE SET head_id = excluded.head_id, tail_id = excluded.tail_id, detail = excluded.detail`
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
	var id int64
	err := q.queryRow(ctx, selectFindingText, text).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = q.queryRow(ctx, insertFindingText, text).Scan(&id)
	}
	return id, err
}

// putFindingDetail stores the detail of finding id, its shared parts once.
func putFindingDetail(ctx context.Context, q rowQuerier, id int64, detail []byte) error {
	head, packages, tail, ok := SplitDetail(detail)
	if !ok {
		_, err := q.ExecContext(ctx, UpsertFindingParts, id, nil, nil, string(detail))
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
	_, err = q.ExecContext(ctx, UpsertFindingParts, id, headID, tailID, packages)
	return err
}
