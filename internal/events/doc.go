// Package events turns what happens in the registry into EventBridge-shaped events and
// delivers them to webhooks.
//
// # Writing events
//
// An Origin (registry id as account, region) builds the events, pure and without I/O:
// "ECR Image Action" on push and delete, "ECR Image Scan" when a basic scan completes,
// "Inspector2 Scan" when an initial enhanced scan completes, "Inspector2 Finding" when a
// finding is created, updated or closed. Each is a store.OutboxEvent whose whole envelope (id,
// account, region, time) is fixed when it is built, so every delivery of it carries the same
// bytes. The store writes it to the outbox in the same transaction as the change it reports,
// so a change is never committed without its event, nor an event without its change.
//
// # Delivering them
//
// A Dispatcher delivers the outbox to each configured webhook independently, one goroutine
// per webhook, in outbox order, at least once: a webhook's cursor (the last event it
// acknowledged with a 2xx) is stored after each delivery, so a crash or restart resends at
// most the event that was in flight. A failed delivery is retried, with exponential backoff
// (1 s doubling to 5 min by default, with jitter, or the receiver's Retry-After if longer),
// until the webhook accepts it: events are never dropped, and the ones after it wait. A dead
// or slow webhook therefore delays only itself; scanning only writes outbox rows.
//
// A webhook is known by its name (its URL unless configured otherwise). A name seen for the
// first time starts at the end of the outbox: it receives events from then on, not the history.
// A name dropped from the configuration is forgotten when the dispatcher next starts, so that it
// holds back no pruning; added back, it starts afresh from then.
//
// Each request is a POST of the envelope JSON with these headers:
//
//	Content-Type: application/json
//	X-Lading-Event-Id: <the envelope id>      (receivers dedupe on it: delivery is at least once)
//	X-Lading-Event-Type: <the detail-type>
//	X-Lading-Signature: sha256=<hex HMAC-SHA256 of the request body, keyed with the webhook's secret>
//
// The signature header is absent for a webhook without a secret. Verify compares a signature
// header with a body in constant time.
package events
