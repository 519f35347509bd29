package ecr_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// TestPutImageDescriptorSizes: PutImage refuses a manifest whose layer, config or child
// manifest size is not the stored one with InvalidParameterException (ECR has no size error).
func TestPutImageDescriptorSizes(t *testing.T) {
	s := startServer(t)
	c := s.admin()
	ctx := context.Background()
	repo := "sizes"
	createRepo(t, c, repo)
	img := pushImage(t, c, repo, "v1", 5000)
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		ociIndex, ociManifest, img.digest, len(img.manifest))
	sizeField := func(n int) string { return fmt.Sprintf(`"size":%d`, n) }
	for _, tc := range []struct {
		name, manifest, says string
	}{
		{"layer size+1", strings.Replace(string(img.manifest), sizeField(len(img.layer)), sizeField(len(img.layer)+1), 1), "Layer with digest"},
		{"config size+1", strings.Replace(string(img.manifest), sizeField(len(img.config)), sizeField(len(img.config)+1), 1), "Config with digest"},
		{"index child size+1", strings.Replace(index, sizeField(len(img.manifest)), sizeField(len(img.manifest)+1), 1), "Referenced image with digest " + img.digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.manifest == string(img.manifest) || tc.manifest == index {
				t.Fatal("the size to change was not found")
			}
			_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(tc.manifest), ImageTag: aws.String("wrong")})
			msg := wantAPIError(t, err, "InvalidParameterException")
			if !strings.HasPrefix(msg, "Invalid parameter at 'ImageManifest' failed to satisfy constraint: ") || !strings.Contains(msg, tc.says) {
				t.Errorf("message %q", msg)
			}
		})
	}
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: &repo, ImageManifest: aws.String(index), ImageTag: aws.String("multi")}); err != nil {
		t.Fatalf("index with the child's size: %v", err)
	}
}
