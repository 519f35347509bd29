// Package vulndb is Lading's advisory database: OSV records imported from files or synced
// from a mirror in OSV's bucket layout, kept in the metadata store, and loaded into the
// in-memory index of internal/advisory that matching reads.
//
// # Writing
//
// DB.Import (`lading db import`) and DB.Update (`lading db update`, and Syncer in
// `lading serve`) turn their input into one batch: records are parsed and compared with the
// current version by content hash; new and changed records are staged in the store, where
// readers cannot see them; one short commit makes the whole batch current and raises the
// database version by one. A failed, corrupt or interrupted batch is aborted and the
// previous version stays as it was; a batch that changes nothing makes no version. An
// all.zip in an ecosystem's folder (and a sync of an ecosystem) is that ecosystem's complete
// set, so records it lacks are deleted. Each version records the (ecosystem, package) keys
// its batch added, changed, withdrew or deleted advisories for: the change set continuous
// scanning re-evaluates.
//
// Update fetches <Ecosystem>/modified_id.csv first and, when the database already holds the
// ecosystem, downloads only the records that are new or modified; otherwise it downloads
// all.zip, resuming a download that was cut short (Options.CacheDir).
//
// # Reading
//
// Records are parsed, indexed and matched by internal/advisory, which does no I/O; this
// package reads them from the store. Watcher polls the store's version (one indexed
// SELECT) and, when it moves, rebuilds only the packages in the change sets
// (advisory.Index.WithChanges), sharing everything else with the previous snapshot; it
// notifies subscribers with the change set. Every process and node runs its own Watcher
// over the shared store, so all see the same versions. DB.IndexFor and DB.Query build a
// small index of just the packages asked about, for one-off scans and `lading db query`.
package vulndb
