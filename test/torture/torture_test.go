// Package torture drives the registry's real stores and its OCI handler, in process, through a
// long random sequence of pushes (with shared layers), tags, deletes, mounts, lifecycle policy
// runs, garbage collections (grace 0, injected clock), pulls and restarts, against an in-memory
// model of what the registry should hold, and checks them against each other after every step.
// See README.md for the long run and how to replay a failure.
package torture

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/gc"
	"github.com/lading-registry/lading/internal/lifecycle"
	"github.com/lading-registry/lading/internal/oci"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "seed of the random sequence (0: from TORTURE_SEED, else the clock)")
	stepsFlag = flag.Int("steps", 0, "steps to run (0: from TORTURE_STEPS, else 1000)")
)

func settings(t *testing.T) (uint64, int) {
	t.Helper()
	seed, steps := *seedFlag, *stepsFlag
	if seed == 0 {
		if v := os.Getenv("TORTURE_SEED"); v != "" {
			var err error
			if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
				t.Fatalf("TORTURE_SEED: %v", err)
			}
		} else {
			seed = uint64(time.Now().UnixNano())
		}
	}
	if steps == 0 {
		steps = 1000
		if v := os.Getenv("TORTURE_STEPS"); v != "" {
			var err error
			if steps, err = strconv.Atoi(v); err != nil {
				t.Fatalf("TORTURE_STEPS: %v", err)
			}
		}
	}
	return seed, steps
}

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar"
	maxImages   = 10 // per repository, so that every check stays cheap
)

var (
	repos    = []string{"alpha", "beta", "team/gamma"}
	tagNames = []string{"v1", "v2", "v3", "rel-1", "rel-2", "rel-3"}
)

// image is a manifest as the model knows it.
type image struct {
	content  []byte
	blobs    []digest.Digest // config first, then layers
	pushedAt time.Time
}

// repoModel is what one repository should hold.
type repoModel struct {
	created   bool // by its first blob (create on push); repositories are never deleted here
	links     map[digest.Digest]bool
	manifests map[digest.Digest]*image
	tags      map[string]digest.Digest
}

// model is what the registry should hold.
type model struct {
	repos   map[string]*repoModel
	files   map[digest.Digest]bool // blob files on disk
	content map[digest.Digest][]byte
	deleted [][2]string // (repository, digest) of manifests deleted, the latest last
}

func newModel() *model {
	m := &model{repos: map[string]*repoModel{}, files: map[digest.Digest]bool{}, content: map[digest.Digest][]byte{}}
	for _, r := range repos {
		m.repos[r] = &repoModel{links: map[digest.Digest]bool{}, manifests: map[digest.Digest]*image{}, tags: map[string]digest.Digest{}}
	}
	return m
}

func (r *repoModel) tagsOf(d digest.Digest) []string {
	var out []string
	for tag, td := range r.tags {
		if td == d {
			out = append(out, tag)
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) forgetManifest(repo string, d digest.Digest) {
	r := m.repos[repo]
	delete(r.manifests, d)
	for tag, td := range r.tags {
		if td == d {
			delete(r.tags, tag)
		}
	}
	m.deleted = append(m.deleted, [2]string{repo, d.String()})
	if len(m.deleted) > 64 {
		m.deleted = m.deleted[1:]
	}
}

// registry is the system under test: the real stores, reopened on restart.
type registry struct {
	dir     string
	clock   *time.Time
	meta    *sqlite.DB
	blobs   *blobfs.Store
	handler http.Handler
	life    *lifecycle.Service
}

func (g *registry) now() time.Time { return *g.clock }

func (g *registry) open(t *testing.T) {
	t.Helper()
	meta, err := sqlite.Open(context.Background(), filepath.Join(g.dir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	meta.SetClock(g.now)
	blobs, err := blobfs.New(g.dir, blobfs.Options{Now: g.now})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	g.meta, g.blobs = meta, blobs
	g.handler = oci.NewHandler(meta, blobs, oci.Config{CreateOnPush: true, Logger: log, Now: g.now})
	g.life = lifecycle.New(meta, g.now, log)
}

func (g *registry) close() { _ = g.meta.Close() }

func (g *registry) do(method, target string, body []byte, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	return rec
}

type run struct {
	t    *testing.T
	rng  *rand.Rand
	seed uint64
	step int
	op   string
	m    *model
	g    *registry
	pool [][]byte // shared layer contents
	n    int      // pushes so far, to make configs unique
}

func (r *run) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("step %d (%s), seed %d (replay: go test ./test/torture -run TestTorture -seed %d -steps %d): %s",
		r.step, r.op, r.seed, r.seed, r.step+1, fmt.Sprintf(format, args...))
}

func TestTorture(t *testing.T) {
	seed, steps := settings(t)
	t.Logf("seed %d, %d steps (replay with -seed %d)", seed, steps, seed)
	clock := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond) // ahead of the files' mtimes
	r := &run{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed, m: newModel(),
		g: &registry{dir: workDir(t), clock: &clock}}
	r.g.open(t)
	t.Cleanup(func() { r.g.close() })
	for i := range 12 {
		b := make([]byte, 64+r.rng.IntN(4096))
		for j := range b {
			b[j] = byte(r.rng.UintN(256))
		}
		b[0] = byte(i) // distinct contents
		r.pool = append(r.pool, b)
	}
	ops := []struct {
		name   string
		weight int
		fn     func() string // returns the repository to pull-check ("" for all)
	}{
		{"push", 30, r.push}, {"tag", 10, r.tag}, {"delete tag", 8, r.deleteTag}, {"delete manifest", 8, r.deleteManifest},
		{"mount", 8, r.mount}, {"lifecycle", 5, r.lifecycle}, {"gc", 6, r.collect}, {"pull", 20, r.pull}, {"restart", 2, r.restart},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	counts := map[string]int{}
	for r.step = 0; r.step < steps; r.step++ {
		*r.g.clock = r.g.clock.Add(time.Duration(1+r.rng.IntN(120)) * time.Minute)
		pick := r.rng.IntN(total)
		for _, o := range ops {
			if pick -= o.weight; pick < 0 {
				r.op = o.name
				counts[o.name]++
				repo := o.fn()
				r.check(repo)
				break
			}
		}
	}
	t.Logf("operations: %v", counts)
}

func (r *run) pickRepo() string { return repos[r.rng.IntN(len(repos))] }

func (r *run) pickImage(repo string) (digest.Digest, bool) {
	ds := slices.Sorted(maps.Keys(r.m.repos[repo].manifests))
	if len(ds) == 0 {
		return "", false
	}
	return ds[r.rng.IntN(len(ds))], true
}

// putBlob makes content present in repo as a client would: a HEAD first, then (sometimes) a
// mount from another repository, else a monolithic upload.
func (r *run) putBlob(repo string, content []byte) digest.Digest {
	d := digest.FromBytes(content)
	rm := r.m.repos[repo]
	if rec := r.g.do(http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), nil); rec.Code == http.StatusOK {
		if !rm.links[d] {
			r.fail("HEAD %s in %s: 200, but the model has no link", d, repo)
		}
		return d
	} else if rm.links[d] {
		r.fail("HEAD %s in %s: %d, but the model links it", d, repo, rec.Code)
	}
	if r.rng.IntN(3) == 0 {
		from := r.pickRepo()
		rec := r.g.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+"&from="+from, nil)
		switch {
		case rec.Code == http.StatusCreated && r.m.repos[from].links[d]:
			rm.links[d], rm.created = true, true
			return d
		case rec.Code == http.StatusAccepted && !r.m.repos[from].links[d]:
			loc := rec.Header().Get("Location")
			if rec := r.g.do(http.MethodPut, loc+"?digest="+d.String(), content, "Content-Type", "application/octet-stream"); rec.Code != http.StatusCreated {
				r.fail("PUT %s after a refused mount: %d %s", loc, rec.Code, rec.Body)
			}
		default:
			r.fail("mount %s from %s into %s: %d, model link in source %v", d, from, repo, rec.Code, r.m.repos[from].links[d])
		}
	} else if rec := r.g.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content, "Content-Type", "application/octet-stream"); rec.Code != http.StatusCreated {
		r.fail("upload %s into %s: %d %s", d, repo, rec.Code, rec.Body)
	}
	rm.links[d], rm.created = true, true
	r.m.files[d] = true
	r.m.content[d] = content
	return d
}

func (r *run) push() string {
	repo := r.pickRepo()
	rm := r.m.repos[repo]
	if len(rm.manifests) >= maxImages {
		return r.deleteManifestIn(repo)
	}
	r.n++
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","push":%d}`, r.n))
	var layers [][]byte
	for _, i := range r.rng.Perm(len(r.pool))[:1+r.rng.IntN(3)] {
		layers = append(layers, r.pool[i])
	}
	img := &image{blobs: []digest.Digest{r.putBlob(repo, config)}}
	var descs []string
	for _, l := range layers {
		d := r.putBlob(repo, l)
		img.blobs = append(img.blobs, d)
		descs = append(descs, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, ociLayer, d, len(l)))
	}
	img.content = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[%s]}`,
		ociManifest, ociConfig, img.blobs[0], len(config), strings.Join(descs, ",")))
	d := digest.FromBytes(img.content)
	ref := d.String()
	if r.rng.IntN(10) < 7 {
		ref = tagNames[r.rng.IntN(len(tagNames))]
	}
	if rec := r.g.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, img.content, "Content-Type", ociManifest); rec.Code != http.StatusCreated {
		r.fail("PUT manifest %s:%s: %d %s", repo, ref, rec.Code, rec.Body)
	}
	img.pushedAt = r.g.now()
	rm.manifests[d] = img
	if ref != d.String() {
		rm.tags[ref] = d
	}
	return repo
}

func (r *run) tag() string {
	repo := r.pickRepo()
	d, ok := r.pickImage(repo)
	if !ok {
		return repo
	}
	rm := r.m.repos[repo]
	tag := tagNames[r.rng.IntN(len(tagNames))]
	if rec := r.g.do(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, rm.manifests[d].content, "Content-Type", ociManifest); rec.Code != http.StatusCreated {
		r.fail("retag %s:%s: %d %s", repo, tag, rec.Code, rec.Body)
	}
	rm.tags[tag] = d
	return repo
}

func (r *run) deleteTag() string {
	repo := r.pickRepo()
	rm := r.m.repos[repo]
	tags := slices.Sorted(maps.Keys(rm.tags))
	if len(tags) == 0 {
		return repo
	}
	tag := tags[r.rng.IntN(len(tags))]
	if rec := r.g.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, nil); rec.Code != http.StatusAccepted {
		r.fail("DELETE tag %s:%s: %d %s", repo, tag, rec.Code, rec.Body)
	}
	delete(rm.tags, tag)
	return repo
}

func (r *run) deleteManifest() string { return r.deleteManifestIn(r.pickRepo()) }

func (r *run) deleteManifestIn(repo string) string {
	d, ok := r.pickImage(repo)
	if !ok {
		return repo
	}
	if rec := r.g.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+d.String(), nil); rec.Code != http.StatusAccepted {
		r.fail("DELETE manifest %s@%s: %d %s", repo, d, rec.Code, rec.Body)
	}
	r.m.forgetManifest(repo, d)
	return repo
}

// mount links into a repository a blob another one links.
func (r *run) mount() string {
	from, to := r.pickRepo(), r.pickRepo()
	linked := slices.Sorted(maps.Keys(r.m.repos[from].links))
	if len(linked) == 0 || from == to {
		return to
	}
	d := linked[r.rng.IntN(len(linked))]
	rec := r.g.do(http.MethodPost, "/v2/"+to+"/blobs/uploads/?mount="+d.String()+"&from="+from, nil)
	if rec.Code != http.StatusCreated {
		r.fail("mount %s from %s into %s: %d %s", d, from, to, rec.Code, rec.Body)
	}
	r.m.repos[to].links[d], r.m.repos[to].created = true, true
	return to
}

// policies are the lifecycle policies the run applies; expected computes, independently of
// internal/lifecycle/policy, what each expires (each has one rule, so no precedence arises).
var policies = []struct {
	text     func(n int) string
	selects  func(tags []string) bool
	count    bool // imageCountMoreThan (else sinceImagePushed, in days)
	numbers  [2]int
	describe string
}{
	{func(n int) string {
		return fmt.Sprintf(`{"rules":[{"rulePriority":1,"description":"untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":%d},"action":{"type":"expire"}}]}`, n)
	}, func(tags []string) bool { return len(tags) == 0 }, false, [2]int{1, 3}, "untagged older than N days"},
	{func(n int) string {
		return fmt.Sprintf(`{"rules":[{"rulePriority":5,"description":"any","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":%d},"action":{"type":"expire"}}]}`, n)
	}, func([]string) bool { return true }, true, [2]int{2, 6}, "keep N images"},
	{func(n int) string {
		return fmt.Sprintf(`{"rules":[{"rulePriority":2,"description":"releases","selection":{"tagStatus":"tagged","tagPatternList":["rel-*"],"countType":"imageCountMoreThan","countNumber":%d},"action":{"type":"expire"}}]}`, n)
	}, func(tags []string) bool {
		return slices.ContainsFunc(tags, func(t string) bool { return strings.HasPrefix(t, "rel-") })
	}, true, [2]int{1, 2}, "keep N rel-* images"},
}

func (r *run) lifecycle() string {
	repo := r.pickRepo()
	rm := r.m.repos[repo]
	if !rm.created {
		return repo
	}
	p := policies[r.rng.IntN(len(policies))]
	n := p.numbers[0] + r.rng.IntN(p.numbers[1]-p.numbers[0]+1)
	if _, err := r.g.life.PutPolicy(context.Background(), repo, p.text(n)); err != nil {
		r.fail("put policy %s: %v", p.describe, err)
	}
	// Days pass, so that age rules have something to do.
	*r.g.clock = r.g.clock.Add(time.Duration(r.rng.IntN(3*24)) * time.Hour)
	type cand struct {
		d  digest.Digest
		at time.Time
	}
	var matched []cand
	for d, img := range rm.manifests {
		if p.selects(rm.tagsOf(d)) {
			matched = append(matched, cand{d, img.pushedAt})
		}
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].at.After(matched[j].at) })
	want := map[digest.Digest]bool{}
	for i, c := range matched {
		if (p.count && i >= n) || (!p.count && c.at.Before(r.g.now().Add(-time.Duration(n)*24*time.Hour))) {
			want[c.d] = true
		}
	}
	res, err := r.g.life.RunRepository(context.Background(), repo)
	if err != nil {
		r.fail("lifecycle run: %v", err)
	}
	got := map[digest.Digest]bool{}
	for _, e := range res.Expired {
		got[digest.Digest(e.Image.Digest)] = true
	}
	if !maps.Equal(got, want) || res.Skipped != 0 {
		r.fail("policy %q (N=%d) expired %v (skipped %d), the model expects %v", p.describe, n, got, res.Skipped, want)
	}
	for d := range got {
		r.m.forgetManifest(repo, d)
	}
	return ""
}

// collect runs garbage collection with no grace period: every link no manifest of its repository
// references goes, then every file no link or manifest names.
func (r *run) collect() string {
	wantLinks := 0
	for _, rm := range r.m.repos {
		referenced := map[digest.Digest]bool{}
		for _, img := range rm.manifests {
			for _, b := range img.blobs {
				referenced[b] = true
			}
		}
		for d := range rm.links {
			if !referenced[d] {
				delete(rm.links, d)
				wantLinks++
			}
		}
	}
	wantBlobs := 0
	for d := range r.m.files {
		used := false
		for _, rm := range r.m.repos {
			used = used || rm.links[d]
		}
		if !used {
			delete(r.m.files, d)
			delete(r.m.content, d)
			wantBlobs++
		}
	}
	dry := r.rng.IntN(4) == 0
	rep, err := gc.New(r.g.meta, r.g.blobs).Run(context.Background(), gc.Options{Grace: 0, DryRun: dry, Now: r.g.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		r.fail("gc: %v", err)
	}
	if rep.LinksRemoved != wantLinks || rep.Blobs != wantBlobs {
		r.fail("gc (dry run %v) removed %d links and %d blobs, the model expects %d and %d", dry, rep.LinksRemoved, rep.Blobs, wantLinks, wantBlobs)
	}
	if dry { // and now for real
		if rep, err = gc.New(r.g.meta, r.g.blobs).Run(context.Background(), gc.Options{Grace: 0, Now: r.g.now, Logger: slog.New(slog.DiscardHandler)}); err != nil ||
			rep.LinksRemoved != wantLinks || rep.Blobs != wantBlobs {
			r.fail("gc after a dry run: %+v %v, the model expects %d links and %d blobs", rep, err, wantLinks, wantBlobs)
		}
	}
	return ""
}

func (r *run) pull() string {
	repo := r.pickRepo()
	d, ok := r.pickImage(repo)
	if !ok {
		return repo
	}
	ref := d.String()
	if tags := r.m.repos[repo].tagsOf(d); len(tags) > 0 && r.rng.IntN(2) == 0 {
		ref = tags[r.rng.IntN(len(tags))]
	}
	r.pullImage(repo, ref, d)
	return repo
}

func (r *run) restart() string {
	r.g.close()
	r.g.open(r.t)
	return ""
}

// pullImage GETs a manifest and its blobs through the handler and compares every byte.
func (r *run) pullImage(repo, ref string, d digest.Digest) {
	img := r.m.repos[repo].manifests[d]
	rec := r.g.do(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil, "Accept", ociManifest)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), img.content) {
		r.fail("GET %s:%s: %d, content equal %v", repo, ref, rec.Code, bytes.Equal(rec.Body.Bytes(), img.content))
	}
	for _, b := range img.blobs {
		rec := r.g.do(http.MethodGet, "/v2/"+repo+"/blobs/"+b.String(), nil)
		if rec.Code != http.StatusOK || digest.FromBytes(rec.Body.Bytes()) != b {
			r.fail("GET blob %s of %s@%s: %d", b, repo, d, rec.Code)
		}
	}
}

// check compares the registry with the model: manifests, tags and links in the metadata store,
// blob files on disk (each hashing to its name), deleted manifests gone; and pulls through the
// handler every image of repo (of every repository when repo is "").
func (r *run) check(repo string) {
	ctx := context.Background()
	db := r.g.meta.Reader()
	rows := func(q string) map[string]bool {
		out := map[string]bool{}
		rs, err := db.QueryContext(ctx, q)
		if err != nil {
			r.fail("%s: %v", q, err)
		}
		defer rs.Close()
		for rs.Next() {
			var a, b string
			if err := rs.Scan(&a, &b); err != nil {
				r.fail("%v", err)
			}
			out[a+" "+b] = true
		}
		return out
	}
	wantManifests, wantTags, wantLinks := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for name, rm := range r.m.repos {
		for d := range rm.manifests {
			wantManifests[name+" "+d.String()] = true
		}
		for tag, d := range rm.tags {
			wantTags[name+" "+tag+"="+d.String()] = true
		}
		for d := range rm.links {
			wantLinks[name+" "+d.String()] = true
		}
	}
	if got := rows("SELECT repository, digest FROM manifests"); !maps.Equal(got, wantManifests) {
		r.fail("manifests %v, model %v", keys(got), keys(wantManifests))
	}
	if got := rows("SELECT repository, tag || '=' || digest FROM tags"); !maps.Equal(got, wantTags) {
		r.fail("tags %v, model %v", keys(got), keys(wantTags))
	}
	if got := rows("SELECT repository, digest FROM repository_blobs"); !maps.Equal(got, wantLinks) {
		r.fail("links %v, model %v", keys(got), keys(wantLinks))
	}
	onDisk := map[digest.Digest]bool{}
	err := r.g.blobs.WalkBlobs(ctx, func(f blob.File) error {
		onDisk[f.Digest] = true
		if !r.m.files[f.Digest] {
			return fmt.Errorf("blob file %s has no reason to exist", f.Digest)
		}
		rc, err := r.g.blobs.Open(ctx, f.Digest)
		if err != nil {
			return err
		}
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			return err
		}
		if digest.NewDigest(digest.SHA256, h) != f.Digest {
			return fmt.Errorf("blob file %s does not hash to its name", f.Digest)
		}
		return nil
	})
	if err != nil {
		r.fail("%v", err)
	}
	for d := range r.m.files {
		if !onDisk[d] {
			r.fail("blob %s is missing from disk", d)
		}
	}
	for _, del := range r.m.deleted {
		if _, live := r.m.repos[del[0]].manifests[digest.Digest(del[1])]; live {
			continue // pushed again since
		}
		if rec := r.g.do(http.MethodHead, "/v2/"+del[0]+"/manifests/"+del[1], nil); rec.Code != http.StatusNotFound {
			r.fail("deleted manifest %s@%s answers %d", del[0], del[1], rec.Code)
		}
	}
	for name, rm := range r.m.repos {
		if repo != "" && name != repo {
			continue
		}
		for d := range rm.manifests {
			r.pullImage(name, d.String(), d)
		}
		for tag, d := range rm.tags {
			rec := r.g.do(http.MethodHead, "/v2/"+name+"/manifests/"+tag, nil)
			if rec.Code != http.StatusOK || rec.Header().Get("Docker-Content-Digest") != d.String() {
				r.fail("HEAD %s:%s: %d %s, model %s", name, tag, rec.Code, rec.Header().Get("Docker-Content-Digest"), d)
			}
		}
	}
}

// workDir is a fresh data directory, in memory (/dev/shm) where there is one: the run commits
// thousands of blobs and transactions, and their fsyncs would otherwise be most of its time.
func workDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "lading-torture-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func keys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
