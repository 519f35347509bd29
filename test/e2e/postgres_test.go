package e2e

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/blob/pglock"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testserver"
)

// repositoriesIn counts the repositories the schema at url holds: what proves the server wrote
// its metadata there.
func repositoriesIn(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM repositories").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOnPostgres: the OCI conformance suite with the metadata in PostgreSQL; and two nodes on
// one PostgreSQL schema and one bucket: an image pushed with crane to the first is described
// by the ECR API and pulled byte for byte from the second.
func TestOnPostgres(t *testing.T) {
	pg := pgtest.New(t)
	t.Run("OCIConformance", func(t *testing.T) {
		url := pg.Schema(t)
		runConformance(t, testserver.Start(t, ladingBin, "--metadata", url))
		if repositoriesIn(t, url) == 0 {
			t.Fatal("no repository in PostgreSQL after the conformance suite")
		}
	})
	t.Run("PushPullAndECR", func(t *testing.T) {
		crane := testserver.Tool(t, "crane")
		// Nodes share the database, the bucket and the secret key that seals the stored
		// access keys; each has a data directory of its own.
		url, s3 := sharedStore(t)
		a := testserver.Start(t, ladingBin, "--metadata", url, "--blobs", s3.URL())
		env := []string{"DOCKER_CONFIG=" + a.DockerConfig(t)}
		_, img, _ := testImages(t)
		run(t, env, crane, "push", "--insecure", singleLayout(t, img, nil), a.Addr+"/pg/app:v1")
		sdk := adminECR(a)
		out, err := sdk.DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String("pg/app"),
			ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v1")}}})
		if err != nil || len(out.ImageDetails) != 1 || out.ImageDetails[0].ImageDigest == nil {
			t.Fatalf("DescribeImages: %v %+v", err, out)
		}

		b := testserver.Start(t, ladingBin, "--metadata", url, "--blobs", s3.URL())
		if n := repositoriesIn(t, url); n != 1 {
			t.Fatalf("%d repositories in PostgreSQL, want 1", n)
		}
		if _, err := os.Stat(filepath.Join(a.DataDir, "lading.db")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a SQLite database in the data directory of a node on PostgreSQL (%v)", err)
		}
		// The push's upload sessions were locked in PostgreSQL, where every node sees them.
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var lockSessions int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
			pglock.ApplicationName).Scan(&lockSessions); err != nil || lockSessions == 0 {
			t.Fatalf("no session of the blob locks in PostgreSQL (%v)", err)
		}
		pulled := filepath.Join(t.TempDir(), "pulled")
		run(t, []string{"DOCKER_CONFIG=" + b.DockerConfig(t)}, crane, "pull", "--insecure", "--format=oci", b.Addr+"/pg/app:v1", pulled)
		idx := layoutIndex(t, pulled)
		gi, err := idx.Image(firstEntry(t, idx).Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkPulledImage(t, gi, img)
	})
}
