package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/lifecycle"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openStore(t *testing.T, clk *clock) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetClock(clk.now)
	origin := events.Origin{Account: "123456789012", Region: "us-east-1"}
	// The delete event, as the scanning service's effects write it.
	db.SetEffects(func(_ context.Context, c store.Change) (store.Effects, error) {
		if c.Kind != store.ChangeDelete {
			return store.Effects{}, nil
		}
		ev, err := origin.ImageAction(events.ImageAction{Action: events.ActionDelete, Repository: c.Repository, Digest: c.Manifest.Digest,
			ManifestMediaType: c.Manifest.MediaType, At: clk.now()})
		return store.Effects{Events: []store.OutboxEvent{ev}}, err
	}, nil)
	return db
}

// push stores a one-layer image with tags at the store's clock.
func push(t *testing.T, db *sqlite.DB, repo, name string, tags ...string) string {
	t.Helper()
	ctx := context.Background()
	layer := digest.FromString("layer of " + name).String()
	if err := db.LinkBlob(ctx, repo, layer, 10, true); err != nil {
		t.Fatal(err)
	}
	content := []byte(`{"name":"` + name + `"}`)
	m := store.Manifest{Repository: repo, Digest: digest.FromBytes(content).String(), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(content)), Content: content}
	if _, err := db.PutManifest(ctx, m, []store.Reference{{Kind: store.RefLayer, Digest: layer, Size: 10, Required: true}}, tags,
		store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	return m.Digest
}

// The user guide's "multiple rules, example A" repository, pushed 10, 9 and 8 days before the
// run, through the store: the preview names image A under rule 1 and expires nothing; the run
// then deletes A alone, with an "ECR Image Action" DELETE event, and records the run.
func TestPreviewThenRun(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	db := openStore(t, clk)
	day := 24 * time.Hour
	a := push(t, db, "app", "A", "beta-1", "prod-1")
	clk.t = clk.t.Add(day)
	b := push(t, db, "app", "B", "beta-2", "prod-2")
	clk.t = clk.t.Add(day)
	c := push(t, db, "app", "C", "beta-3")
	clk.t = start.Add(10 * day)
	text := `{"rules":[{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
		{"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPatternList":["beta*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	if err := db.PutLifecyclePolicy(ctx, "app", text); err != nil {
		t.Fatal(err)
	}
	svc := lifecycle.New(db, clk.now, slog.New(slog.DiscardHandler))

	pv, err := svc.Preview(ctx, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Results) != 1 || pv.Results[0].Digest != a || pv.Results[0].RulePriority != 1 ||
		!slices.Equal(pv.Results[0].Tags, []string{"beta-1", "prod-1"}) || !pv.Results[0].PushedAt.Equal(start) {
		t.Fatalf("preview %+v", pv.Results)
	}
	stored, err := db.LifecyclePreview(ctx, "app")
	if err != nil || len(stored.Results) != 1 || stored.Status != lifecycle.StatusComplete {
		t.Fatalf("stored preview %+v %v", stored, err)
	}
	if _, err := db.GetManifest(ctx, "app", a); err != nil {
		t.Fatalf("the preview expired something: %v", err)
	}

	res, err := svc.RunRepository(ctx, "app")
	if err != nil || len(res.Expired) != 1 || res.Expired[0].Image.Digest != a {
		t.Fatalf("run %+v %v", res, err)
	}
	for d, want := range map[string]bool{a: false, b: true, c: true} {
		_, err := db.GetManifest(ctx, "app", d)
		if (err == nil) != want {
			t.Fatalf("%s present %v, want %v", d, err == nil, want)
		}
	}
	evs, err := db.ReadOutbox(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var deletes []string
	for _, ev := range evs {
		var detail struct {
			Action string `json:"action-type"`
			Result string `json:"result"`
			Digest string `json:"image-digest"`
		}
		if err := json.Unmarshal(ev.Detail, &detail); err != nil {
			t.Fatal(err)
		}
		if ev.DetailType == "ECR Image Action" && detail.Action == "DELETE" && detail.Result == "SUCCESS" {
			deletes = append(deletes, detail.Digest)
		}
	}
	if !slices.Equal(deletes, []string{a}) {
		t.Fatalf("DELETE events for %v, want [%s]", deletes, a)
	}
	p, err := db.LifecyclePolicy(ctx, "app")
	if err != nil || !p.LastEvaluatedAt.Equal(clk.t) {
		t.Fatalf("last evaluated %v, %v", p.LastEvaluatedAt, err)
	}
}

// An image that changed between evaluation and expiry (a tag moved onto it) is left.
func TestExpireImageRechecks(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	db := openStore(t, clk)
	d := push(t, db, "app", "old")
	m, err := db.GetManifest(ctx, "app", d)
	if err != nil {
		t.Fatal(err)
	}
	push(t, db, "app", "tagger") // creates nothing new for d
	if _, err := db.PutManifest(ctx, store.Manifest{Repository: "app", Digest: d, MediaType: m.MediaType, Size: m.Size, Content: m.Content},
		[]store.Reference{{Kind: store.RefLayer, Digest: digest.FromString("layer of old").String(), Size: 10, Required: true}},
		[]string{"latest"}, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted, err := db.ExpireImage(ctx, "app", d, nil, m.PushedAt)
	if err != nil || deleted {
		t.Fatalf("expired an image tagged since: %v %v", deleted, err)
	}
	deleted, err = db.ExpireImage(ctx, "app", d, []string{"latest"}, m.PushedAt)
	if err != nil || !deleted {
		t.Fatalf("expire as seen: %v %v", deleted, err)
	}
	if _, err := db.GetManifest(ctx, "app", d); !errors.Is(err, store.ErrManifestNotFound) {
		t.Fatalf("still there: %v", err)
	}
}

// sinceImagePushed counts from the injected clock: untagged images older than 14 days go.
func TestUntaggedOlderThan14Days(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	db := openStore(t, clk)
	old := push(t, db, "app", "old")
	clk.t = start.Add(10 * 24 * time.Hour)
	young := push(t, db, "app", "young")
	tagged := push(t, db, "app", "tagged", "v1")
	text := `{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`
	if err := db.PutLifecyclePolicy(ctx, "app", text); err != nil {
		t.Fatal(err)
	}
	svc := lifecycle.New(db, clk.now, slog.New(slog.DiscardHandler))
	for _, step := range []struct {
		at      time.Duration
		expired []string
	}{
		{14 * 24 * time.Hour, nil}, // exactly 14 days: not older
		{15 * 24 * time.Hour, []string{old}},
		{30 * 24 * time.Hour, []string{young}},
	} {
		clk.t = start.Add(step.at)
		res, err := svc.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res {
			for _, e := range r.Expired {
				got = append(got, e.Image.Digest)
			}
		}
		if !slices.Equal(got, step.expired) {
			t.Fatalf("at +%s expired %v, want %v", step.at, got, step.expired)
		}
	}
	if _, err := db.GetManifest(ctx, "app", tagged); err != nil {
		t.Fatalf("the tagged image expired: %v", err)
	}
}
