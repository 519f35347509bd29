package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// findingRefs are the ids of the dictionary rows finding rows point to (0052's scan_targets,
// finding_vulnerabilities, finding_arn_prefixes, finding_key_sets, finding_facts), resolved once
// per value in a transaction and handed to the finding upserts as parameters. A re-evaluation
// writes one vulnerability's findings into hundreds of images: called in each upsert, the
// dictionary functions (finding_key_set_ref and finding_facts_ref hash their text) cost more
// than the insert they fed.
//
// The ids are those of one transaction: a transaction run again starts with new refs, since
// the rows the failed one inserted are gone.
type findingRefs struct {
	targets  map[targetKey]int32
	vulns    map[string]int32
	prefixes map[string]int32
	keySets  map[string]int32
	facts    map[factsKey]int32
	// pending are the queued upserts whose parameters wait for ids.
	pending []refUse
}

type targetKey struct{ repository, digest, scanType string }

// factsKey is a finding_facts row: what a detail holds of its vulnerability (detailArgs).
type factsKey struct{ title, source, vendorSeverity, aliases, related string }

// refUse is a queued upsert and the values whose ids it takes: the target at its argument 0,
// the vulnerability at 1, the ARN prefix at 2, the package key list (when not nil) at 8 and
// the facts (when not nil) at factsArg.
type refUse struct {
	q      *pgx.QueuedQuery
	target targetKey
	vuln   string
	prefix string
	keys   *string
	facts  *factsKey
}

// factsArg is where upsertFindingDetailed takes its facts id.
const factsArg = 26

func newFindingRefs() *findingRefs {
	return &findingRefs{targets: map[targetKey]int32{}, vulns: map[string]int32{}, prefixes: map[string]int32{},
		keySets: map[string]int32{}, facts: map[factsKey]int32{}}
}

// use records that q takes the ids of u's values: resolve sets them before q is sent.
func (r *findingRefs) use(u refUse) { r.pending = append(r.pending, u) }

// resolve looks up (writing when new) the ids the pending upserts need and not yet known, in
// one round trip, and sets them as the upserts' arguments.
func (r *findingRefs) resolve(ctx context.Context, tx pgx.Tx) error {
	if len(r.pending) == 0 {
		return nil
	}
	var (
		targets                  []targetKey
		vulns, prefixes, keySets []string
		facts                    []factsKey
		seenT                    = map[targetKey]bool{}
		seenV, seenP, seenK      = map[string]bool{}, map[string]bool{}, map[string]bool{}
		seenF                    = map[factsKey]bool{}
	)
	for _, u := range r.pending {
		addUnknown(r.targets, seenT, &targets, u.target)
		addUnknown(r.vulns, seenV, &vulns, u.vuln)
		addUnknown(r.prefixes, seenP, &prefixes, u.prefix)
		if u.keys != nil {
			addUnknown(r.keySets, seenK, &keySets, *u.keys)
		}
		if u.facts != nil {
			addUnknown(r.facts, seenF, &facts, *u.facts)
		}
	}
	if err := r.lookUp(ctx, tx, targets, vulns, prefixes, keySets, facts); err != nil {
		return fmt.Errorf("finding dictionary ids: %w", err)
	}
	for _, u := range r.pending {
		args := u.q.Arguments
		args[0], args[1], args[2] = r.targets[u.target], r.vulns[u.vuln], r.prefixes[u.prefix]
		if u.keys != nil {
			args[8] = r.keySets[*u.keys]
		}
		if u.facts != nil {
			args[factsArg] = r.facts[*u.facts]
		}
	}
	r.pending = r.pending[:0]
	return nil
}

// addUnknown adds k to *out when known holds no id for it and seen does not hold it yet.
func addUnknown[K comparable](known map[K]int32, seen map[K]bool, out *[]K, k K) {
	if _, ok := known[k]; !ok && !seen[k] {
		seen[k] = true
		*out = append(*out, k)
	}
}

// lookUp calls the dictionary functions of 0052 on the values given, one statement per
// dictionary, all in one batch, and keeps the ids. Each statement's rows come in the order of
// its arrays (WITH ORDINALITY), so the i-th id is the i-th value's.
func (r *findingRefs) lookUp(ctx context.Context, tx pgx.Tx, targets []targetKey, vulns, prefixes, keySets []string, facts []factsKey) error {
	b := &pgx.Batch{}
	var reads []func(pgx.BatchResults) error
	queue := func(sql string, n int, keep func(i int, id int32), args ...any) {
		if n == 0 {
			return
		}
		b.Queue(sql, args...)
		reads = append(reads, func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
			if err != nil {
				return err
			}
			if len(ids) != n {
				return fmt.Errorf("%d ids for %d values", len(ids), n)
			}
			for i, id := range ids {
				keep(i, id)
			}
			return nil
		})
	}
	repos, digests, types := make([]string, len(targets)), make([]string, len(targets)), make([]string, len(targets))
	for i, t := range targets {
		repos[i], digests[i], types[i] = t.repository, t.digest, t.scanType
	}
	queue(`SELECT finding_target_ref(u.r, u.d, u.s) FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(r, d, s, n) ORDER BY u.n`,
		len(targets), func(i int, id int32) { r.targets[targets[i]] = id }, repos, digests, types)
	queue(`SELECT finding_vulnerability_ref(u.v) FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n) ORDER BY u.n`,
		len(vulns), func(i int, id int32) { r.vulns[vulns[i]] = id }, vulns)
	queue(`SELECT finding_arn_prefix_ref(u.p) FROM unnest($1::text[]) WITH ORDINALITY AS u(p, n) ORDER BY u.n`,
		len(prefixes), func(i int, id int32) { r.prefixes[prefixes[i]] = id }, prefixes)
	queue(`SELECT finding_key_set_ref(u.k) FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) ORDER BY u.n`,
		len(keySets), func(i int, id int32) { r.keySets[keySets[i]] = id }, keySets)
	titles, sources, sevs, aliases, related := make([]string, len(facts)), make([]string, len(facts)), make([]string, len(facts)),
		make([]string, len(facts)), make([]string, len(facts))
	for i, f := range facts {
		titles[i], sources[i], sevs[i], aliases[i], related[i] = f.title, f.source, f.vendorSeverity, f.aliases, f.related
	}
	queue(`SELECT finding_facts_ref(u.t, u.s, u.v, u.a::jsonb, u.r::jsonb)
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS u(t, s, v, a, r, n) ORDER BY u.n`,
		len(facts), func(i int, id int32) { r.facts[facts[i]] = id }, titles, sources, sevs, aliases, related)
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for _, read := range reads {
		if err := read(br); err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}
