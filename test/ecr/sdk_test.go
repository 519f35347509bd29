package ecr_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/opencontainers/go-digest"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// layerTar returns a tar holding one file of n random bytes.
func layerTar(t *testing.T, name string, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(data)
	_ = tw.Close()
	return buf.Bytes()
}

// uploadLayer sends blob through InitiateLayerUpload, UploadLayerPart (in parts of partSize) and
// CompleteLayerUpload.
func uploadLayer(t *testing.T, c *ecr.Client, repo string, blob []byte, partSize int) string {
	t.Helper()
	ctx := context.Background()
	init, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: &repo})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(init.PartSize) != 10<<20 || len(aws.ToString(init.UploadId)) != 36 {
		t.Fatalf("InitiateLayerUpload = partSize %d, uploadId %q", aws.ToInt64(init.PartSize), aws.ToString(init.UploadId))
	}
	for off := 0; off < len(blob); off += partSize {
		end := min(off+partSize, len(blob))
		out, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: init.UploadId,
			PartFirstByte: aws.Int64(int64(off)), PartLastByte: aws.Int64(int64(end - 1)), LayerPartBlob: blob[off:end]})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt64(out.LastByteReceived) != int64(end-1) {
			t.Fatalf("lastByteReceived %d, want %d", aws.ToInt64(out.LastByteReceived), end-1)
		}
	}
	d := digest.FromBytes(blob).String()
	out, err := c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: &repo, UploadId: init.UploadId, LayerDigests: []string{d}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.LayerDigest) != d || aws.ToString(out.RegistryId) != registryID {
		t.Fatalf("CompleteLayerUpload = %+v", out)
	}
	return d
}

type testImage struct {
	config, layer []byte
	manifest      []byte
	digest        string
}

// pushImage uploads a one-layer OCI image through the ECR API and puts its manifest under tag.
func pushImage(t *testing.T, c *ecr.Client, repo, tag string, layerSize int) testImage {
	t.Helper()
	img := testImage{layer: layerTar(t, "data.bin", layerSize)}
	img.config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(img.layer).String() + `"]}}`)
	uploadLayer(t, c, repo, img.layer, 1<<20)
	uploadLayer(t, c, repo, img.config, 1<<20)
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ociManifest, ociConfig, digest.FromBytes(img.config), len(img.config), ociLayer, digest.FromBytes(img.layer), len(img.layer)))
	img.digest = digest.FromBytes(img.manifest).String()
	in := &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(string(img.manifest))}
	if tag != "" {
		in.ImageTag = &tag
	}
	out, err := c.PutImage(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Image.ImageId.ImageDigest) != img.digest || aws.ToString(out.Image.ImageManifestMediaType) != ociManifest ||
		aws.ToString(out.Image.ImageManifest) != string(img.manifest) {
		t.Fatalf("PutImage = %+v", out.Image)
	}
	return img
}

func createRepo(t *testing.T, c *ecr.Client, name string) *types.Repository {
	t.Helper()
	out, err := c.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: &name})
	if err != nil {
		t.Fatal(err)
	}
	return out.Repository
}

func TestRepositories(t *testing.T) {
	s := startServer(t)
	c := s.admin()
	ctx := context.Background()

	out, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{
		RepositoryName:             aws.String("team/app"),
		ImageTagMutability:         types.ImageTagMutabilityImmutable,
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
		EncryptionConfiguration:    &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeAes256},
		Tags:                       []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Repository
	if aws.ToString(r.RepositoryArn) != "arn:aws:ecr:us-east-1:"+registryID+":repository/team/app" ||
		aws.ToString(r.RegistryId) != registryID || aws.ToString(r.RepositoryName) != "team/app" ||
		aws.ToString(r.RepositoryUri) != s.Host+"/team/app" || r.ImageTagMutability != types.ImageTagMutabilityImmutable ||
		!r.ImageScanningConfiguration.ScanOnPush || r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 ||
		r.CreatedAt == nil || time.Since(*r.CreatedAt) > time.Minute {
		t.Fatalf("CreateRepository = %+v", r)
	}

	for _, tc := range []struct {
		name string
		in   *ecr.CreateRepositoryInput
		code string
	}{
		{"exists", &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")}, "RepositoryAlreadyExistsException"},
		{"upper case", &ecr.CreateRepositoryInput{RepositoryName: aws.String("Team")}, "InvalidParameterException"},
		{"too short", &ecr.CreateRepositoryInput{RepositoryName: aws.String("a")}, "InvalidParameterException"},
		{"double slash", &ecr.CreateRepositoryInput{RepositoryName: aws.String("a//b")}, "InvalidParameterException"},
		{"bad mutability", &ecr.CreateRepositoryInput{RepositoryName: aws.String("ok-name"), ImageTagMutability: "SOMETIMES"}, "InvalidParameterException"},
		{"kms", &ecr.CreateRepositoryInput{RepositoryName: aws.String("ok-name"), EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms}}, "InvalidParameterException"},
		{"reserved tag", &ecr.CreateRepositoryInput{RepositoryName: aws.String("ok-name"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}}, "InvalidTagParameterException"},
		{"other registry", &ecr.CreateRepositoryInput{RepositoryName: aws.String("ok-name"), RegistryId: aws.String("999999999999")}, "InvalidParameterException"},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			_, err := c.CreateRepository(ctx, tc.in)
			wantAPIError(t, err, tc.code)
		})
	}
	tags := make([]types.Tag, 51)
	for i := range tags {
		tags[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("ok-name"), Tags: tags})
	wantAPIError(t, err, "TooManyTagsException")

	names := []string{"r-a", "r-b", "r-c", "r-d"}
	for _, n := range names {
		createRepo(t, c, n)
	}
	// Paginate two at a time: every repository exactly once, in name order.
	var got []string
	var token *string
	for pages := 0; ; pages++ {
		page, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Repositories {
			got = append(got, aws.ToString(r.RepositoryName))
		}
		if token = page.NextToken; token == nil {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if want := append(append([]string{}, names...), "team/app"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged repositories %v, want %v", got, want)
	}
	byName, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"r-c", "team/app"}})
	if err != nil || len(byName.Repositories) != 2 || aws.ToString(byName.Repositories[1].RepositoryName) != "team/app" {
		t.Fatalf("DescribeRepositories by name = %+v, %v", byName, err)
	}
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"r-c", "missing"}})
	if msg := wantAPIError(t, err, "RepositoryNotFoundException"); !strings.Contains(msg, "'missing'") {
		t.Fatalf("message %q does not name the repository", msg)
	}
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1001)})
	wantAPIError(t, err, "InvalidParameterException")
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{NextToken: aws.String("bm90IGEgdG9rZW4")})
	wantAPIError(t, err, "InvalidParameterException")

	// Resource tags.
	arn := "arn:aws:ecr:us-west-2:" + registryID + ":repository/team/app"
	if _, err := c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: &arn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("team"), Value: aws.String("b")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: &arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: &arn})
	if err != nil || len(lt.Tags) != 1 || aws.ToString(lt.Tags[0].Key) != "team" || aws.ToString(lt.Tags[0].Value) != "b" {
		t.Fatalf("ListTagsForResource = %+v, %v", lt, err)
	}
	_, err = c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecr:us-west-2:" + registryID + ":repository/missing")})
	wantAPIError(t, err, "RepositoryNotFoundException")
	_, err = c.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String("arn:aws:s3:::bucket"), Tags: []types.Tag{}})
	wantAPIError(t, err, "InvalidParameterException")
	_, err = c.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: &arn, TagKeys: []string{"aws:created"}})
	wantAPIError(t, err, "InvalidTagParameterException")

	// PutImageTagMutability.
	pm, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("r-a"), ImageTagMutability: types.ImageTagMutabilityImmutable})
	if err != nil || pm.ImageTagMutability != types.ImageTagMutabilityImmutable || aws.ToString(pm.RepositoryName) != "r-a" {
		t.Fatalf("PutImageTagMutability = %+v, %v", pm, err)
	}
	_, err = c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("missing"), ImageTagMutability: types.ImageTagMutabilityMutable})
	wantAPIError(t, err, "RepositoryNotFoundException")

	// DeleteRepository: refused while it holds images, unless forced.
	pushImage(t, c, "r-b", "v1", 1000)
	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("r-b")})
	wantAPIError(t, err, "RepositoryNotEmptyException")
	del, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("r-b"), Force: true})
	if err != nil || aws.ToString(del.Repository.RepositoryName) != "r-b" {
		t.Fatalf("DeleteRepository = %+v, %v", del, err)
	}
	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("r-b")})
	wantAPIError(t, err, "RepositoryNotFoundException")

	reg, err := c.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	if err != nil || aws.ToString(reg.RegistryId) != registryID || reg.ReplicationConfiguration == nil || len(reg.ReplicationConfiguration.Rules) != 0 {
		t.Fatalf("DescribeRegistry = %+v, %v", reg, err)
	}
}

func TestLayersAndImages(t *testing.T) {
	s := startServer(t)
	c := s.admin()
	ctx := context.Background()
	repo := "images"
	createRepo(t, c, repo)
	img := pushImage(t, c, repo, "v1", 3<<20+123) // four parts of 1 MiB

	// Layer checks.
	layerDigest := digest.FromBytes(img.layer).String()
	missing := digest.FromString("missing").String()
	chk, err := c.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: &repo,
		LayerDigests: []string{layerDigest, missing, "sha256:zz"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(chk.Layers) != 2 || chk.Layers[0].LayerAvailability != types.LayerAvailabilityAvailable ||
		aws.ToInt64(chk.Layers[0].LayerSize) != int64(len(img.layer)) || aws.ToString(chk.Layers[0].MediaType) != ociLayer ||
		chk.Layers[1].LayerAvailability != types.LayerAvailabilityUnavailable {
		t.Fatalf("BatchCheckLayerAvailability layers = %+v", chk.Layers)
	}
	if len(chk.Failures) != 1 || chk.Failures[0].FailureCode != types.LayerFailureCodeInvalidLayerDigest {
		t.Fatalf("BatchCheckLayerAvailability failures = %+v", chk.Failures)
	}

	// A download URL works without credentials, and only as signed.
	dl, err := c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: &repo, LayerDigest: &layerDigest})
	if err != nil || aws.ToString(dl.LayerDigest) != layerDigest || !strings.HasPrefix(aws.ToString(dl.DownloadUrl), s.URL+"/") {
		t.Fatalf("GetDownloadUrlForLayer = %+v, %v", dl, err)
	}
	resp, err := http.Get(aws.ToString(dl.DownloadUrl))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, img.layer) {
		t.Fatalf("download: status %d, %d bytes (want %d)", resp.StatusCode, len(body), len(img.layer))
	}
	tampered := strings.Replace(aws.ToString(dl.DownloadUrl), "expires=", "expires=1", 1)
	if resp, err := http.Get(tampered); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered URL: %v %v", resp.Status, err)
	}
	_, err = c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: &repo, LayerDigest: &missing})
	wantAPIError(t, err, "LayersNotFoundException")
	_, err = c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: &repo, LayerDigest: aws.String("nodigest")})
	wantAPIError(t, err, "InvalidParameterException")

	// Upload errors.
	init, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: &repo})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: &repo, UploadId: init.UploadId, LayerDigests: []string{missing}})
	wantAPIError(t, err, "EmptyUploadException")
	part := []byte("0123456789")
	if _, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: init.UploadId,
		PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(9), LayerPartBlob: part}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: init.UploadId,
		PartFirstByte: aws.Int64(5), PartLastByte: aws.Int64(14), LayerPartBlob: part})
	wantAPIError(t, err, "InvalidLayerPartException")
	var lpe *types.InvalidLayerPartException
	if !asError(err, &lpe) || aws.ToInt64(lpe.LastValidByteReceived) != 9 || aws.ToString(lpe.UploadId) != aws.ToString(init.UploadId) {
		t.Fatalf("InvalidLayerPartException = %+v", lpe)
	}
	_, err = c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: init.UploadId,
		PartFirstByte: aws.Int64(10), PartLastByte: aws.Int64(30), LayerPartBlob: part})
	wantAPIError(t, err, "InvalidLayerPartException")
	_, err = c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: &repo, UploadId: init.UploadId, LayerDigests: []string{missing}})
	wantAPIError(t, err, "InvalidLayerException")
	_, err = c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: aws.String("00000000-0000-0000-0000-000000000000"),
		PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(9), LayerPartBlob: part})
	wantAPIError(t, err, "UploadNotFoundException")
	init2, _ := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: &repo})
	_, _ = c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: init2.UploadId,
		PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(int64(len(img.config) - 1)), LayerPartBlob: img.config})
	_, err = c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: &repo, UploadId: init2.UploadId, LayerDigests: []string{digest.FromBytes(img.config).String()}})
	wantAPIError(t, err, "LayerAlreadyExistsException")
	_, err = c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("missing")})
	wantAPIError(t, err, "RepositoryNotFoundException")

	// PutImage errors.
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(string(img.manifest)), ImageTag: aws.String("v1")})
	wantAPIError(t, err, "ImageAlreadyExistsException")
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(string(img.manifest)), ImageDigest: aws.String(missing)})
	wantAPIError(t, err, "ImageDigestDoesNotMatchException")
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String("{not json")})
	wantAPIError(t, err, "InvalidParameterException")
	noLayer := strings.Replace(string(img.manifest), layerDigest, missing, 1)
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: &noLayer, ImageTag: aws.String("broken")})
	wantAPIError(t, err, "LayersNotFoundException")
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("missing"), ImageManifest: aws.String(string(img.manifest))})
	wantAPIError(t, err, "RepositoryNotFoundException")
	// The same manifest under a second tag is a new image id, not an error.
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(string(img.manifest)), ImageTag: aws.String("latest")}); err != nil {
		t.Fatal(err)
	}

	// A second image and an index over both.
	img2 := pushImage(t, c, repo, "", 2000)
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}},{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"arm64"}}]}`,
		ociIndex, ociManifest, img.digest, len(img.manifest), ociManifest, img2.digest, len(img2.manifest))
	indexDigest := digest.FromString(index).String()
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: &index, ImageTag: aws.String("multi")}); err != nil {
		t.Fatal(err)
	}
	missingChild := strings.Replace(index, img2.digest, missing, 1)
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: &missingChild, ImageTag: aws.String("multi2")})
	wantAPIError(t, err, "ReferencedImagesNotFoundException")

	// ListImages: one entry per tag plus the untagged manifest.
	type id struct{ d, t string }
	var listed []id
	var token *string
	for range 10 {
		page, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: &repo, MaxResults: aws.Int32(1), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range page.ImageIds {
			listed = append(listed, id{aws.ToString(i.ImageDigest), aws.ToString(i.ImageTag)})
		}
		if token = page.NextToken; token == nil {
			break
		}
	}
	want := []id{{img.digest, "latest"}, {img.digest, "v1"}, {img2.digest, ""}, {indexDigest, "multi"}}
	sort.Slice(want, func(i, j int) bool {
		if want[i].d != want[j].d {
			return want[i].d < want[j].d
		}
		return want[i].t < want[j].t
	})
	if fmt.Sprint(listed) != fmt.Sprint(want) {
		t.Fatalf("ListImages = %v, want %v", listed, want)
	}
	untagged, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: &repo, Filter: &types.ListImagesFilter{TagStatus: types.TagStatusUntagged}})
	if err != nil || len(untagged.ImageIds) != 1 || aws.ToString(untagged.ImageIds[0].ImageDigest) != img2.digest {
		t.Fatalf("ListImages UNTAGGED = %+v, %v", untagged, err)
	}
	_, err = c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: &repo, Filter: &types.ListImagesFilter{TagStatus: "SOME"}})
	wantAPIError(t, err, "InvalidParameterException")
	_, err = c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("missing")})
	wantAPIError(t, err, "RepositoryNotFoundException")

	// DescribeImages.
	di, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: &repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}, {ImageDigest: &indexDigest}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(di.ImageDetails) != 2 {
		t.Fatalf("DescribeImages = %+v", di.ImageDetails)
	}
	d0, d1 := di.ImageDetails[0], di.ImageDetails[1]
	imgSize := int64(len(img.config) + len(img.layer))
	if aws.ToString(d0.ImageDigest) != img.digest || strings.Join(d0.ImageTags, ",") != "latest,v1" || aws.ToInt64(d0.ImageSizeInBytes) != imgSize ||
		aws.ToString(d0.ImageManifestMediaType) != ociManifest || aws.ToString(d0.ArtifactMediaType) != ociConfig ||
		d0.ImagePushedAt == nil || time.Since(*d0.ImagePushedAt) > time.Minute || d0.ImageStatus != types.ImageStatusActive ||
		aws.ToString(d0.RegistryId) != registryID || aws.ToString(d0.RepositoryName) != repo || d0.LastRecordedPullTime != nil {
		t.Fatalf("image detail = %+v", d0)
	}
	// An index reports the size of its largest image (ECR's rule for manifest lists).
	if aws.ToString(d1.ImageDigest) != indexDigest || aws.ToInt64(d1.ImageSizeInBytes) != imgSize || aws.ToString(d1.ImageManifestMediaType) != ociIndex {
		t.Fatalf("index detail = %+v", d1)
	}
	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: &repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}})
	wantAPIError(t, err, "ImageNotFoundException")
	all, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: &repo, Filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged}})
	if err != nil || len(all.ImageDetails) != 2 {
		t.Fatalf("DescribeImages TAGGED = %+v, %v", all, err)
	}

	// BatchGetImage.
	bg, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: &repo, ImageIds: []types.ImageIdentifier{
		{ImageTag: aws.String("v1")}, {ImageDigest: &img2.digest}, {ImageTag: aws.String("nope")}, {ImageDigest: &img.digest, ImageTag: aws.String("multi")}, {}},
		AcceptedMediaTypes: []string{ociManifest}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bg.Images) != 2 || aws.ToString(bg.Images[0].ImageManifest) != string(img.manifest) || aws.ToString(bg.Images[0].ImageId.ImageTag) != "v1" ||
		aws.ToString(bg.Images[1].ImageManifest) != string(img2.manifest) || aws.ToString(bg.Images[1].ImageManifestMediaType) != ociManifest {
		t.Fatalf("BatchGetImage images = %+v", bg.Images)
	}
	codes := []types.ImageFailureCode{}
	for _, f := range bg.Failures {
		codes = append(codes, f.FailureCode)
	}
	if fmt.Sprint(codes) != fmt.Sprint([]types.ImageFailureCode{types.ImageFailureCodeImageNotFound, types.ImageFailureCodeImageTagDoesNotMatchDigest, types.ImageFailureCodeMissingDigestAndTag}) {
		t.Fatalf("BatchGetImage failures = %v", codes)
	}

	// BatchDeleteImage.
	bd, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: &repo, ImageIds: []types.ImageIdentifier{
		{ImageDigest: &img2.digest}, {ImageTag: aws.String("latest")}, {ImageTag: aws.String("nope")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bd.ImageIds) != 1 || aws.ToString(bd.ImageIds[0].ImageTag) != "latest" || aws.ToString(bd.ImageIds[0].ImageDigest) != img.digest {
		t.Fatalf("BatchDeleteImage ids = %+v", bd.ImageIds)
	}
	if len(bd.Failures) != 2 || bd.Failures[0].FailureCode != types.ImageFailureCodeImageReferencedByManifestList ||
		!strings.Contains(aws.ToString(bd.Failures[0].FailureReason), indexDigest) || bd.Failures[1].FailureCode != types.ImageFailureCodeImageNotFound {
		t.Fatalf("BatchDeleteImage failures = %+v", bd.Failures)
	}
	bd, err = c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: &repo, ImageIds: []types.ImageIdentifier{{ImageDigest: &indexDigest}, {ImageDigest: &img2.digest}}})
	if err != nil || len(bd.ImageIds) != 2 || aws.ToString(bd.ImageIds[0].ImageTag) != "multi" || aws.ToString(bd.ImageIds[1].ImageTag) != "" || len(bd.Failures) != 0 {
		t.Fatalf("BatchDeleteImage = %+v, %v", bd, err)
	}
	_, err = c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: &repo, ImageIds: []types.ImageIdentifier{}})
	wantAPIError(t, err, "InvalidParameterException")
}

func asError[T error](err error, target *T) bool {
	for err != nil {
		if t, ok := err.(T); ok {
			*target = t
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestImmutableTags(t *testing.T) {
	s := startServer(t)
	c := s.admin()
	ctx := context.Background()
	repo := "locked"
	createRepo(t, c, repo)
	img := pushImage(t, c, repo, "v1", 100)
	if _, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: &repo, ImageTagMutability: types.ImageTagMutabilityImmutable}); err != nil {
		t.Fatal(err)
	}
	other := pushImage(t, c, repo, "", 200)
	_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(string(other.manifest)), ImageTag: aws.String("v1")})
	wantAPIError(t, err, "ImageTagAlreadyExistsException")

	// The registry face refuses the same move with TAG_INVALID.
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/v2/"+repo+"/manifests/v1", bytes.NewReader(other.manifest))
	req.Header.Set("Content-Type", ociManifest)
	req.SetBasicAuth(adminKey, adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "TAG_INVALID") {
		t.Fatalf("/v2/ re-tag: %d %s", resp.StatusCode, body)
	}
	// New tags are still accepted, and v1 still names the first image.
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(string(other.manifest)), ImageTag: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	bg, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: &repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(bg.Images) != 1 || aws.ToString(bg.Images[0].ImageId.ImageDigest) != img.digest {
		t.Fatalf("v1 = %+v, %v", bg, err)
	}
}

func TestAuthorizationToken(t *testing.T) {
	s := startServer(t)
	c := s.admin()
	out, err := c.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AuthorizationData) != 1 {
		t.Fatalf("authorizationData = %+v", out.AuthorizationData)
	}
	ad := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 2 || parts[0] != "AWS" || parts[1] == "" {
		t.Fatalf("token decodes to %q, want AWS:<password without ':'>", raw)
	}
	if aws.ToString(ad.ProxyEndpoint) != s.URL {
		t.Fatalf("proxyEndpoint %q, want %q", aws.ToString(ad.ProxyEndpoint), s.URL)
	}
	if d := time.Until(*ad.ExpiresAt); d < 11*time.Hour+59*time.Minute || d > 12*time.Hour {
		t.Fatalf("expires in %v, want 12h", d)
	}
	for _, tc := range []struct {
		user, pass string
		want       int
	}{{"AWS", parts[1], 200}, {"AWS", parts[1] + "x", 401}, {"other", parts[1], 401}} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/v2/", nil)
		req.SetBasicAuth(tc.user, tc.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("/v2/ as %s: %d, want %d", tc.user, resp.StatusCode, tc.want)
		}
	}
	//lint:ignore SA1019 registryIds is deprecated in the model but clients still send it
	_, err = c.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{"12"}})
	wantAPIError(t, err, "InvalidParameterException")
	//lint:ignore SA1019 registryIds is deprecated in the model but clients still send it
	two, err := c.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{registryID, registryID}})
	if err != nil || len(two.AuthorizationData) != 2 {
		t.Fatalf("two registry ids = %+v, %v", two, err)
	}
}

func TestScanningConfiguration(t *testing.T) {
	s := startServer(t)
	c := s.admin()
	ctx := context.Background()
	for _, n := range []string{"scanrepo-prod", "scanrepo-test", "legacy"} {
		createRepo(t, c, n)
	}
	get, err := c.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
	if err != nil || get.ScanningConfiguration.ScanType != types.ScanTypeBasic || len(get.ScanningConfiguration.Rules) != 0 || aws.ToString(get.RegistryId) != registryID {
		t.Fatalf("default = %+v, %v", get, err)
	}
	// The deprecated repository flag counts under basic scanning.
	if _, err := c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String("legacy"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String("missing"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}})
	wantAPIError(t, err, "RepositoryNotFoundException")
	check := func(want map[string]string) {
		t.Helper()
		out, err := c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{
			RepositoryNames: []string{"scanrepo-prod", "scanrepo-test", "legacy", "missing"}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, sc := range out.ScanningConfigurations {
			var fs []string
			for _, f := range sc.AppliedScanFilters {
				fs = append(fs, aws.ToString(f.Filter))
			}
			got[aws.ToString(sc.RepositoryName)] = fmt.Sprintf("%s %v %v", sc.ScanFrequency, sc.ScanOnPush, fs)
			if aws.ToString(sc.RepositoryArn) != "arn:aws:ecr:us-east-1:"+registryID+":repository/"+aws.ToString(sc.RepositoryName) {
				t.Errorf("arn %q", aws.ToString(sc.RepositoryArn))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("scanning configurations = %v, want %v", got, want)
		}
		if len(out.Failures) != 1 || aws.ToString(out.Failures[0].RepositoryName) != "missing" ||
			out.Failures[0].FailureCode != types.ScanningConfigurationFailureCodeRepositoryNotFound {
			t.Fatalf("failures = %+v", out.Failures)
		}
	}
	check(map[string]string{"scanrepo-prod": "MANUAL false []", "scanrepo-test": "MANUAL false []", "legacy": "SCAN_ON_PUSH true []"})

	put, err := c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced, Rules: []types.RegistryScanningRule{
		{ScanFrequency: types.ScanFrequencyContinuousScan, RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("prod"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}},
		{ScanFrequency: types.ScanFrequencyScanOnPush, RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("scanrepo-*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}},
	}})
	if err != nil || put.RegistryScanningConfiguration.ScanType != types.ScanTypeEnhanced || len(put.RegistryScanningConfiguration.Rules) != 2 {
		t.Fatalf("PutRegistryScanningConfiguration = %+v, %v", put, err)
	}
	check(map[string]string{"scanrepo-prod": "CONTINUOUS_SCAN true [prod]", "scanrepo-test": "SCAN_ON_PUSH true [scanrepo-*]", "legacy": "MANUAL false []"})
	get, err = c.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
	if err != nil || get.ScanningConfiguration.ScanType != types.ScanTypeEnhanced || len(get.ScanningConfiguration.Rules) != 2 ||
		aws.ToString(get.ScanningConfiguration.Rules[1].RepositoryFilters[0].Filter) != "scanrepo-*" {
		t.Fatalf("GetRegistryScanningConfiguration = %+v, %v", get, err)
	}

	filter := func(v string) []types.ScanningRepositoryFilter {
		return []types.ScanningRepositoryFilter{{Filter: aws.String(v), FilterType: types.ScanningRepositoryFilterTypeWildcard}}
	}
	rule := types.RegistryScanningRule{ScanFrequency: types.ScanFrequencyScanOnPush, RepositoryFilters: filter("*")}
	for _, tc := range []struct {
		name string
		in   *ecr.PutRegistryScanningConfigurationInput
		code string
	}{
		{"three rules", &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced, Rules: []types.RegistryScanningRule{rule, rule, rule}}, "ValidationException"},
		{"basic with continuous", &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeBasic, Rules: []types.RegistryScanningRule{
			{ScanFrequency: types.ScanFrequencyContinuousScan, RepositoryFilters: filter("*")}}}, "InvalidParameterException"},
		{"invalid filter", &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced, Rules: []types.RegistryScanningRule{
			{ScanFrequency: types.ScanFrequencyScanOnPush, RepositoryFilters: filter("Prod-")}}}, "ValidationException"},
		{"no filters", &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced, Rules: []types.RegistryScanningRule{
			{ScanFrequency: types.ScanFrequencyScanOnPush, RepositoryFilters: []types.ScanningRepositoryFilter{}}}}, "ValidationException"},
		{"bad filter type", &ecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced, Rules: []types.RegistryScanningRule{
			{ScanFrequency: types.ScanFrequencyScanOnPush, RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("x"), FilterType: "PREFIX_MATCH"}}}}}, "ValidationException"},
		{"bad scan type", &ecr.PutRegistryScanningConfigurationInput{ScanType: "DEEP"}, "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutRegistryScanningConfiguration(ctx, tc.in)
			wantAPIError(t, err, tc.code)
		})
	}
	// Refused configurations change nothing.
	check(map[string]string{"scanrepo-prod": "CONTINUOUS_SCAN true [prod]", "scanrepo-test": "SCAN_ON_PUSH true [scanrepo-*]", "legacy": "MANUAL false []"})

	names := make([]string, 26)
	for i := range names {
		names[i] = fmt.Sprintf("repo-%d", i)
	}
	_, err = c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: names})
	wantAPIError(t, err, "ValidationException")
	_, err = c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: []string{}})
	wantAPIError(t, err, "ValidationException")
	_, err = c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: []string{"Bad Name"}})
	wantAPIError(t, err, "ValidationException")
}

func TestSignatures(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	_, err := s.client("us-west-2", adminKey, "wrongwrongwrongwrongwrongwrongwrongwrong").DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	wantAPIError(t, err, "InvalidSignatureException")
	_, err = s.client("us-west-2", "LAKUNKNOWNUNKNOWNUNK", adminSecret).DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	wantAPIError(t, err, "UnrecognizedClientException")
	// Any region the client is configured with is accepted.
	if _, err := s.client("ap-southeast-2", adminKey, adminSecret).DescribeRegistry(ctx, &ecr.DescribeRegistryInput{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		id       string
		at       time.Time
		wantType string
	}{
		{"unsigned", "", time.Now(), "MissingAuthenticationTokenException"},
		{"20 minutes old", adminKey, time.Now().Add(-20 * time.Minute), "InvalidSignatureException"},
		{"20 minutes ahead", adminKey, time.Now().Add(20 * time.Minute), "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.rawCall(t, "DescribeRegistry", "{}", tc.id, adminSecret, tc.at)
			if status != http.StatusBadRequest || body["__type"] != tc.wantType || body["message"] == "" {
				t.Fatalf("got %d %v, want 400 %s", status, body, tc.wantType)
			}
		})
	}
	status, body := s.rawCall(t, "DescribeRegistry", "{}", adminKey, adminSecret, time.Now())
	if status != 200 || body["registryId"] != registryID {
		t.Fatalf("signed raw call: %d %v", status, body)
	}
	status, body = s.rawCall(t, "NoSuchOperation", "{}", adminKey, adminSecret, time.Now())
	if status != 400 || body["__type"] != "UnknownOperationException" {
		t.Fatalf("unknown operation: %d %v", status, body)
	}
	status, body = s.rawCall(t, "CreateRepository", `{"repositoryName": 5}`, adminKey, adminSecret, time.Now())
	if status != 400 || body["__type"] != "SerializationException" {
		t.Fatalf("wrong member type: %d %v", status, body)
	}
	status, body = s.rawCall(t, "CreateRepository", `{"repositoryName": "x`, adminKey, adminSecret, time.Now())
	if status != 400 || body["__type"] != "SerializationException" {
		t.Fatalf("broken JSON: %d %v", status, body)
	}
	status, body = s.rawCall(t, "CreateRepository", `{}`, adminKey, adminSecret, time.Now())
	if status != 400 || body["__type"] != "InvalidParameterException" {
		t.Fatalf("missing required member: %d %v", status, body)
	}
}
