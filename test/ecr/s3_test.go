package ecr_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/testserver"
)

// TestLayerUploadOnS3: ECR's layer upload (InitiateLayerUpload, UploadLayerPart in 1 MiB parts,
// CompleteLayerUpload) and PutImage into `lading serve --blobs s3://...`, then the image back
// through BatchGetImage and GetDownloadUrlForLayer.
func TestLayerUploadOnS3(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.SetEnv(t)
	ts := testserver.Start(t, ladingBin, "--registry-id", registryID, "--region", "us-east-1", "--blobs", s3.URL())
	s := &server{URL: ts.URL(), Host: ts.Addr}
	api := s.admin()
	ctx := context.Background()
	createRepo(t, api, "s3/app")
	img := pushImage(t, api, "s3/app", "1.0", 10<<20+77) // over one S3 part, sent as 11 ECR parts
	got, err := api.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("s3/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("1.0")}}})
	if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != string(img.manifest) {
		t.Fatalf("BatchGetImage: %+v, %v", got, err)
	}
	for _, b := range [][]byte{img.layer, img.config} {
		out, err := api.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("s3/app"),
			LayerDigest: aws.String(digest.FromBytes(b).String())})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(aws.ToString(out.DownloadUrl))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, b) {
			t.Fatalf("download URL: %d, %d bytes, want %d", resp.StatusCode, len(body), len(b))
		}
	}
}
