package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// corpusImage is an image of testdata/images pushed into the registry being migrated.
type corpusImage struct {
	archive, ref string // the archive and its org.opencontainers.image.ref.name
	repo, tag    string
}

var migrateImages = []corpusImage{
	{"debian-family.tar", "neo4j-like", "mig/neo4j", "neo4j-4.4.0"},
	{"debian-family.tar", "debian-base", "mig/debian", "debian-bookworm"},
	{"debian-family.tar", "node-app", "mig/node", "node-1.0.0"},
	{"multiarch.tar", "multiarch", "mig/multi", "multi-1.0.0"}, // an index over two platforms
	{"debian-family.tar", "neo4j-like", "mig/gated", "gated-4.4.0"},
}

// pushCorpusImage pushes one image or index of a testdata archive with crane, from an OCI
// layout listing only it (its blobs those of the unpacked archive), so that every digest is
// the corpus's own.
func pushCorpusImage(t *testing.T, crane string, env []string, unpacked map[string]string, addr string, im corpusImage) {
	t.Helper()
	dir, ok := unpacked[im.archive]
	if !ok {
		dir = filepath.Join(t.TempDir(), strings.TrimSuffix(im.archive, ".tar"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, nil, "tar", "-xf", testfiles.Path(t, "images", im.archive), "-C", dir)
		unpacked[im.archive] = dir
	}
	var index struct {
		Manifests []map[string]any `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(b, &index) != nil {
		t.Fatalf("%s index.json: %v", im.archive, err)
	}
	var desc map[string]any
	for _, m := range index.Manifests {
		if a, _ := m["annotations"].(map[string]any); a[refNameAnnotation] == im.ref {
			desc = m
		}
	}
	if desc == nil {
		t.Fatalf("%s has no %s", im.archive, im.ref)
	}
	single := filepath.Join(t.TempDir(), "layout")
	if err := os.Mkdir(single, 0o755); err != nil {
		t.Fatal(err)
	}
	one, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{desc}})
	for name, body := range map[string][]byte{"index.json": one, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(single, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "blobs"), filepath.Join(single, "blobs")); err != nil {
		t.Fatal(err)
	}
	run(t, env, crane, "push", "--insecure", single, addr+"/"+im.repo+":"+im.tag)
}

// apiAnswer is an API answer as JSON, or the error code it failed with.
func apiAnswer(out any, err error) string {
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return "error " + ae.ErrorCode()
		}
		return "error " + err.Error()
	}
	b, jerr := json.Marshal(out)
	if jerr != nil {
		return "error " + jerr.Error()
	}
	return string(b)
}

// registryAnswers records what the ECR and Inspector APIs and the admin commands answer about
// everything the migrated registry holds, lists sorted (the order of equal keys is not part of
// the answer), by a name for each question.
func registryAnswers(t *testing.T, srv *testserver.Server, storeFlags []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	sdk, insp := adminECR(srv), adminInspector(srv)
	got := map[string]string{}
	var repos []ecrtypes.Repository
	for p := ecr.NewDescribeRepositoriesPaginator(sdk, &ecr.DescribeRepositoriesInput{}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		repos = append(repos, page.Repositories...)
	}
	sort.Slice(repos, func(i, j int) bool {
		return aws.ToString(repos[i].RepositoryName) < aws.ToString(repos[j].RepositoryName)
	})
	got["DescribeRepositories"] = apiAnswer(repos, nil)
	for _, r := range repos {
		name := aws.ToString(r.RepositoryName)
		var images []ecrtypes.ImageDetail
		for p := ecr.NewDescribeImagesPaginator(sdk, &ecr.DescribeImagesInput{RepositoryName: r.RepositoryName}); p.HasMorePages(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			images = append(images, page.ImageDetails...)
		}
		sort.Slice(images, func(i, j int) bool { return aws.ToString(images[i].ImageDigest) < aws.ToString(images[j].ImageDigest) })
		for i := range images {
			sort.Strings(images[i].ImageTags)
		}
		got["DescribeImages "+name] = apiAnswer(images, nil)
		for _, im := range images {
			if strings.Contains(aws.ToString(im.ImageManifestMediaType), "index") {
				continue
			}
			var findings []ecrtypes.EnhancedImageScanFinding
			var last *ecr.DescribeImageScanFindingsOutput
			var err error
			for p := ecr.NewDescribeImageScanFindingsPaginator(sdk, &ecr.DescribeImageScanFindingsInput{RepositoryName: r.RepositoryName,
				ImageId: &ecrtypes.ImageIdentifier{ImageDigest: im.ImageDigest}}); p.HasMorePages(); {
				if last, err = p.NextPage(ctx); err != nil {
					break
				}
				findings = append(findings, last.ImageScanFindings.EnhancedFindings...)
			}
			if err == nil {
				sort.Slice(findings, func(i, j int) bool {
					return aws.ToString(findings[i].FindingArn) < aws.ToString(findings[j].FindingArn)
				})
				last.ImageScanFindings.EnhancedFindings = findings
				last.NextToken = nil
			}
			got["DescribeImageScanFindings "+name+"@"+aws.ToString(im.ImageDigest)] = apiAnswer(last, err)
		}
		got["GetLifecyclePolicy "+name] = apiAnswer(sdk.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: r.RepositoryName}))
		got["GetRepositoryPolicy "+name] = apiAnswer(sdk.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: r.RepositoryName}))
		got["ListTagsForResource "+name] = apiAnswer(sdk.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn}))
	}
	got["GetRegistryScanningConfiguration"] = apiAnswer(sdk.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{}))
	got["GetRegistryPolicy"] = apiAnswer(sdk.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{}))
	var findings []insptypes.Finding
	for p := inspector2.NewListFindingsPaginator(insp, &inspector2.ListFindingsInput{}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		findings = append(findings, page.Findings...)
	}
	sort.Slice(findings, func(i, j int) bool {
		return aws.ToString(findings[i].FindingArn) < aws.ToString(findings[j].FindingArn)
	})
	got["inspector2 ListFindings"] = apiAnswer(findings, nil)
	got["inspector2 ListFilters"] = apiAnswer(insp.ListFilters(ctx, &inspector2.ListFiltersInput{}))
	got["lading admin access-key list"] = run(t, nil, ladingBin, append([]string{"admin", "access-key", "list"}, storeFlags...)...)
	got["lading admin pull-gate list"] = run(t, nil, ladingBin, append([]string{"admin", "pull-gate", "list"}, storeFlags...)...)
	return got
}

// pulled pulls every image but the gated one with crane and records its manifest digest, its
// manifest's bytes and every blob of the pulled layout by digest and size, each blob's bytes
// checked against its digest.
func pulled(t *testing.T, crane string, env []string, addr string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, im := range migrateImages {
		if im.repo == "mig/gated" {
			continue
		}
		ref := addr + "/" + im.repo + ":" + im.tag
		manifest := run(t, env, crane, "manifest", "--insecure", ref)
		dir := filepath.Join(t.TempDir(), "pulled")
		run(t, env, crane, "pull", "--insecure", "--format=oci", ref, dir)
		var blobs []string
		err := filepath.WalkDir(filepath.Join(dir, "blobs", "sha256"), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.Name() {
				return fmt.Errorf("blob %s holds other bytes", e.Name())
			}
			blobs = append(blobs, fmt.Sprintf("%s:%d", e.Name(), len(b)))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(blobs)
		sum := sha256.Sum256([]byte(manifest))
		got[im.repo+":"+im.tag] = fmt.Sprintf("digest %s manifest sha256:%x blobs %v",
			run(t, env, crane, "digest", "--insecure", ref), sum, blobs)
	}
	return got
}

func adminInspector(srv *testserver.Server) *inspector2.Client {
	return inspector2.New(inspector2.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Retryer: testserver.SDKRetryer(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testserver.AccessKeyID, SecretAccessKey: testserver.SecretAccessKey, Source: "test"}, nil
		})})
}

// dockerAuth writes a docker config with user:password for addr and returns its folder.
func dockerAuth(t *testing.T, addr, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, addr, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAdminMigrateRegistry is issue 15's migration story: a registry on the embedded defaults
// holding the corpus images (Log4Shell in neo4j-like, Debian, npm, a two-platform index),
// their ENHANCED scans and findings, and settings of every kind (registry scanning
// configuration, lifecycle, repository and registry policies, tag immutability, resource tags,
// a suppression rule, a pull gate, a webhook, an access key), moved by `lading admin migrate
// --to-metadata --to-blobs --verify` into PostgreSQL and a bucket. A server on those, with the
// data directory's database and blobs gone, gives every answer as before, pulls byte for byte,
// accepts the access key by SigV4 and by docker login, refuses the gated pull, and sends the
// webhook what is new, none of what was sent before again.
func TestAdminMigrateRegistry(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	ctx := context.Background()
	sink := newEventSink(t, 0)
	pg := pgtest.New(t).Schema(t)
	s3 := testserver.StartS3(t)
	s3.SetEnv(t)
	src := testserver.Start(t, ladingBin, "--event-webhook", sink.srv.URL)
	var zips []string
	for _, eco := range []string{"Maven", "Debian", "npm", "Go"} {
		zips = append(zips, testfiles.Path(t, "osv-mini", eco, "all.zip"))
	}
	run(t, nil, ladingBin, append([]string{"db", "import", "--data-dir", src.DataDir, "--log-level", "warn"}, zips...)...)

	sdk, insp := adminECR(src), adminInspector(src)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sdk.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: ecrtypes.ScanTypeEnhanced,
		Rules: []ecrtypes.RegistryScanningRule{{ScanFrequency: ecrtypes.ScanFrequencyContinuousScan,
			RepositoryFilters: []ecrtypes.ScanningRepositoryFilter{{Filter: aws.String("mig/*"), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard}}}}}))
	for _, im := range migrateImages {
		in := &ecr.CreateRepositoryInput{RepositoryName: aws.String(im.repo)}
		if im.repo == "mig/neo4j" {
			in.ImageTagMutability = ecrtypes.ImageTagMutabilityImmutable
			in.Tags = []ecrtypes.Tag{{Key: aws.String("team"), Value: aws.String("graph")}}
		}
		must(sdk.CreateRepository(ctx, in))
	}
	env := []string{"DOCKER_CONFIG=" + src.DockerConfig(t)}
	unpacked := map[string]string{}
	for _, im := range migrateImages {
		pushCorpusImage(t, crane, env, unpacked, src.Addr, im)
	}

	// Every image's scan completes (the index's platforms each have one).
	deadline := time.Now().Add(90 * time.Second)
	for _, im := range migrateImages {
		for {
			out, err := sdk.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(im.repo)})
			pending := 0
			if err == nil {
				for _, d := range out.ImageDetails {
					if !strings.Contains(aws.ToString(d.ImageManifestMediaType), "index") &&
						(d.ImageScanStatus == nil || d.ImageScanStatus.Status != ecrtypes.ScanStatusActive) {
						pending++
					}
				}
			}
			if err == nil && pending == 0 && len(out.ImageDetails) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: scans not complete: %v %v\nserver log:\n%s", im.repo, apiAnswer(out, err), err, lastBytes(src.Logs(), 3000))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Scans done, the push and scan events delivered: what happens next waits for the webhook.
	sink.waitPushes(t, []string{"neo4j-4.4.0", "debian-bookworm", "node-1.0.0", "multi-1.0.0", "gated-4.4.0"}, 30*time.Second)
	sink.down.Store(true)
	must(sdk.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("mig/debian"), LifecyclePolicyText: aws.String(
		`{"rules":[{"rulePriority":1,"description":"old untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":3650},"action":{"type":"expire"}}]}`)}))
	must(sdk.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("mig/node"), PolicyText: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ci"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`)}))
	must(sdk.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Sid":"replicate","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"*"}]}`)}))
	must(insp.CreateFilter(ctx, &inspector2.CreateFilterInput{Name: aws.String("accepted-45046"), Action: insptypes.FilterActionSuppress,
		Reason: aws.String("not reachable here"), FilterCriteria: &insptypes.FilterCriteria{
			VulnerabilityId:        []insptypes.StringFilter{{Comparison: insptypes.StringComparisonEquals, Value: aws.String("CVE-2021-45046")}},
			EcrImageRepositoryName: []insptypes.StringFilter{{Comparison: insptypes.StringComparisonEquals, Value: aws.String("mig/neo4j")}}}}))
	run(t, nil, ladingBin, "admin", "pull-gate", "set", "--data-dir", src.DataDir, "--repository", "mig/gated", "--severity", "CRITICAL")
	var key struct{ AccessKeyID, SecretAccessKey string }
	if out := run(t, nil, ladingBin, "admin", "access-key", "create", "--data-dir", src.DataDir, "--name", "ci",
		"--preset", "AmazonEC2ContainerRegistryPowerUser", "--json"); json.Unmarshal([]byte(out), &key) != nil || key.SecretAccessKey == "" {
		t.Fatalf("access-key create printed %q", out)
	}
	gated := func(srv *testserver.Server) {
		t.Helper()
		cmd := exec.Command(crane, "manifest", "--insecure", srv.Addr+"/mig/gated:gated-4.4.0")
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "DENIED") || !strings.Contains(string(out), "CVE-2021-44228") {
			t.Errorf("the gated pull: %v\n%s", err, out)
		}
	}
	gated(src)

	pullsBefore := pulled(t, crane, env, src.Addr)
	before := registryAnswers(t, src, []string{"--data-dir", src.DataDir})
	// The story is the one it should be: Log4Shell ACTIVE, the suppressed finding SUPPRESSED,
	// the Debian and npm findings there.
	for _, want := range []string{`"VulnerabilityId":"CVE-2021-44228"`, `"Status":"SUPPRESSED"`, `"VulnerabilityId":"CVE-2021-23337"`, `"ImageTagMutability":"IMMUTABLE"`} {
		if !strings.Contains(before["inspector2 ListFindings"]+before["DescribeRepositories"], want) {
			t.Errorf("before the migration, no %s in ListFindings and DescribeRepositories", want)
		}
	}
	if !strings.Contains(before["GetLifecyclePolicy mig/debian"], "sinceImagePushed") || !strings.Contains(before["GetRegistryScanningConfiguration"], "ENHANCED") {
		t.Errorf("settings before the migration: %s %s", before["GetLifecyclePolicy mig/debian"], before["GetRegistryScanningConfiguration"])
	}
	// At least one event (the suppressed finding's) is held back when the source stops.
	deadline = time.Now().Add(30 * time.Second)
	for sink.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no event was sent to the webhook after the settings changed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	src.Stop()

	out := run(t, nil, ladingBin, "admin", "migrate", "--data-dir", src.DataDir, "--to-metadata", pg, "--to-blobs", s3.URL(),
		"--verify", "--batch-rows", "50", "--log-level", "warn")
	for _, table := range []string{"findings", "manifests", "tags", "settings", "access_keys", "image_finding_counts"} {
		if !tableLine(out, table, "yes") {
			t.Errorf("migrate did not verify %s:\n%s", table, out)
		}
	}
	// Nothing is read from the data directory's database or blobs any more.
	for _, name := range []string{"lading.db", "lading.db-wal", "lading.db-shm", "blobs"} {
		if err := os.RemoveAll(filepath.Join(src.DataDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The same address and data directory (its secret key file unsealing the copied secrets),
	// as an operator restarting the registry on the new stores.
	dst := &testserver.Server{Bin: ladingBin, DataDir: src.DataDir, Addr: src.Addr, Env: src.Env,
		Args: []string{"--metadata", pg, "--blobs", s3.URL(), "--event-webhook", sink.srv.URL}}
	sink.down.Store(false)
	if err := dst.Restart(); err != nil {
		t.Fatalf("%v\n%s", err, lastBytes(dst.Logs(), 3000))
	}
	t.Cleanup(dst.Kill)

	after := registryAnswers(t, dst, []string{"--data-dir", dst.DataDir, "--metadata", pg})
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if before[k] != after[k] {
			t.Errorf("%s differs after the migration:\nbefore: %.3000s\nafter:  %.3000s", k, before[k], after[k])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d answers after the migration, %d before", len(after), len(before))
	}
	pullsAfter := pulled(t, crane, env, dst.Addr)
	for k, v := range pullsBefore {
		if pullsAfter[k] != v {
			t.Errorf("pull of %s differs:\nbefore: %s\nafter:  %s", k, v, pullsAfter[k])
		}
	}
	gated(dst)
	if _, err := os.Stat(filepath.Join(dst.DataDir, "lading.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the server on PostgreSQL made a lading.db (%v)", err)
	}
	if n := filesUnder(t, filepath.Join(dst.DataDir, "blobs")); n != 0 {
		t.Errorf("%d blob files in the data directory after the migration", n)
	}

	// The access key made before: by SigV4, by docker login with it, and by docker login with
	// the authorization token it gets (signed with the copied signing key); a wrong secret is
	// refused.
	keyECR := ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String(dst.URL()), Retryer: testserver.SDKRetryer(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, Source: "test"}, nil
		})})
	if out, err := keyECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil || len(out.Repositories) != len(migrateImages) {
		t.Errorf("the access key by SigV4: %v", err)
	}
	tok, err := keyECR.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil || len(tok.AuthorizationData) != 1 {
		t.Fatalf("GetAuthorizationToken with the access key: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	user, pass, _ := strings.Cut(string(raw), ":")
	ref := dst.Addr + "/mig/debian:debian-bookworm"
	for name, cfg := range map[string]string{"key": dockerAuth(t, dst.Addr, key.AccessKeyID, key.SecretAccessKey), "token": dockerAuth(t, dst.Addr, user, pass)} {
		if got := run(t, []string{"DOCKER_CONFIG=" + cfg}, crane, "digest", "--insecure", ref); !strings.Contains(pullsBefore["mig/debian:debian-bookworm"], got) {
			t.Errorf("docker login with the %s: digest %s", name, got)
		}
	}
	bad := exec.Command(crane, "digest", "--insecure", ref)
	bad.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerAuth(t, dst.Addr, key.AccessKeyID, "wrong-secret"))
	if out, err := bad.CombinedOutput(); err == nil {
		t.Errorf("a wrong secret was accepted: %s", out)
	}

	// The webhook goes on from its copied cursor: the events it refused before the migration
	// and a push after it arrive, and none arrives twice.
	run(t, env, crane, "tag", "--insecure", dst.Addr+"/mig/node:node-1.0.0", "after-migration")
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sink.waitPushes(t, []string{"after-migration"}, 30*time.Second)
	var ids []string
	if err := conn.QueryRow(ctx, "SELECT array_agg(id) FROM outbox").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		sink.mu.Lock()
		missing, twice := 0, 0
		for _, id := range ids {
			if sink.got[id] == 0 {
				missing++
			}
		}
		for _, n := range sink.got {
			if n > 1 {
				twice++
			}
		}
		delivered := len(sink.got)
		sink.mu.Unlock()
		if twice > 0 {
			t.Fatalf("%d events delivered more than once", twice)
		}
		if missing == 0 {
			if delivered != len(ids) {
				t.Fatalf("%d events delivered, %d in the outbox", delivered, len(ids))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d events in the outbox never arrived", missing, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tableLine reports whether out has a line starting with table (as a word) and ending with
// last.
func tableLine(out, table, last string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == table && f[len(f)-1] == last {
			return true
		}
	}
	return false
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
