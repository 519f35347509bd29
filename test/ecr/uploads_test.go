package ecr_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/opencontainers/go-digest"
)

// TestCompleteRacingPartKeepsLayerIntact races CompleteLayerUpload against a late UploadLayerPart
// to the same upload, with jittered delays on either side, and checks after every round that
// the layer is either absent or exactly what its digest names, through
// BatchCheckLayerAvailability and the download URL alike.
func TestCompleteRacingPartKeepsLayerIntact(t *testing.T) {
	s := startServer(t)
	c := s.admin()
	ctx := context.Background()
	repo := "race/parts"
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: &repo}); err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	completed, refused := 0, 0
	for round := range rounds {
		part := make([]byte, 256<<10)
		_, _ = rand.Read(part)
		d := digest.FromBytes(part).String()
		init, err := c.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: &repo})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: init.UploadId,
			PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(int64(len(part) - 1)), LayerPartBlob: part}); err != nil {
			t.Fatal(err)
		}
		jitter := time.Duration(mrand.IntN(3000)-1000) * time.Microsecond
		var completeErr, partErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if jitter < 0 {
				time.Sleep(-jitter)
			}
			_, completeErr = c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: &repo, UploadId: init.UploadId, LayerDigests: []string{d}})
		}()
		go func() {
			defer wg.Done()
			if jitter > 0 {
				time.Sleep(jitter)
			}
			_, partErr = c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: &repo, UploadId: init.UploadId,
				PartFirstByte: aws.Int64(int64(len(part))), PartLastByte: aws.Int64(int64(len(part) + 3)), LayerPartBlob: []byte("evil")})
		}()
		wg.Wait()

		var invalid *types.InvalidLayerException
		var gone *types.UploadNotFoundException
		switch {
		case completeErr == nil:
			completed++
		case errors.As(completeErr, &invalid): // the part came first: the digest no longer matches
			refused++
		default:
			t.Fatalf("round %d: CompleteLayerUpload: %v", round, completeErr)
		}
		if partErr != nil && !errors.As(partErr, &gone) {
			t.Fatalf("round %d: racing UploadLayerPart: %v", round, partErr)
		}
		if present := checkLayer(t, c, repo, d, part); present != (completeErr == nil) {
			t.Fatalf("round %d: layer served %v, CompleteLayerUpload error %v", round, present, completeErr)
		}
	}
	t.Logf("%d rounds: %d completed, %d refused after the part won", rounds, completed, refused)
}

// checkLayer reports whether repo holds layer d, failing the test unless the size ECR reports and
// the bytes its download URL serves are exactly want.
func checkLayer(t *testing.T, c *ecr.Client, repo, d string, want []byte) bool {
	t.Helper()
	ctx := context.Background()
	avail, err := c.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: &repo, LayerDigests: []string{d}})
	if err != nil || len(avail.Layers) != 1 {
		t.Fatalf("BatchCheckLayerAvailability: %+v, %v", avail, err)
	}
	if avail.Layers[0].LayerAvailability != types.LayerAvailabilityAvailable {
		return false
	}
	if n := aws.ToInt64(avail.Layers[0].LayerSize); n != int64(len(want)) {
		t.Fatalf("layer %s: size %d, want %d", d, n, len(want))
	}
	dl, err := c.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: &repo, LayerDigest: &d})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(aws.ToString(dl.DownloadUrl))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download %s: status %d, %v", d, resp.StatusCode, err)
	}
	sum := sha256.Sum256(body)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d || len(body) != len(want) {
		t.Fatalf("download %s served %d bytes hashing to %s", d, len(body), got)
	}
	return true
}
