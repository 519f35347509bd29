package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testserver"
)

// eventSink is a webhook endpoint counting the events it receives by id.
type eventSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]int    // event id -> deliveries
	tag map[string]string // event id -> image tag of an ECR Image Action
	dig map[string]string // event id -> image digest of an ECR Image Action
	// down makes the endpoint answer 503 to every event, counting none, as a webhook that is
	// unreachable for a while.
	down    atomic.Bool
	refused atomic.Int64 // requests answered 503 while down
}

// newEventSink starts the endpoint; it takes delay to answer each event, so that a test can
// catch delivery in progress.
func newEventSink(t *testing.T, delay time.Duration) *eventSink {
	s := &eventSink{got: map[string]int{}, tag: map[string]string{}, dig: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		if s.down.Load() {
			s.refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(r.Body)
		var ev struct {
			ID         string         `json:"id"`
			DetailType string         `json:"detail-type"`
			Detail     map[string]any `json:"detail"`
		}
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		if err != nil || ev.ID == "" {
			t.Errorf("webhook got a malformed event (%v): %.200s", err, body)
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.got[ev.ID]++
		if ev.DetailType == "ECR Image Action" {
			s.tag[ev.ID], _ = ev.Detail["image-tag"].(string)
			s.dig[ev.ID], _ = ev.Detail["image-digest"].(string)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// pushes returns, for each image tag pushed, how many times its push event was delivered.
func (s *eventSink) pushes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, tag := range s.tag {
		out[tag] += s.got[id]
	}
	return out
}

// pushedDigests returns, for each image digest, how many times a push event naming it was
// delivered.
func (s *eventSink) pushedDigests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, d := range s.dig {
		out[d] += s.got[id]
	}
	return out
}

// delivered is the number of deliveries so far, repeats included.
func (s *eventSink) delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.got {
		n += c
	}
	return n
}

// waitPushes waits until the push events of every tag arrived.
func (s *eventSink) waitPushes(t *testing.T, tags []string, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := s.pushes()
		missing := 0
		for _, tag := range tags {
			if got[tag] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d push events not delivered: got %v", within, missing, len(tags), got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWebhookDeliveryAcrossNodes: two nodes on one PostgreSQL schema and one bucket, one
// webhook. In steady state each event reaches the webhook once (one node holds the webhook's
// lease), not once per node; when the node delivering is killed (-9), the other takes the
// lease over once it expires and delivers the rest from the stored cursor: none is lost.
// The once-per-registry duties are held by one node each.
func TestWebhookDeliveryAcrossNodes(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	url, s3 := sharedStore(t)
	sink := newEventSink(t, 0)
	flags := []string{"--metadata", url, "--blobs", s3.URL(), "--event-webhook", sink.srv.URL, "--lease-ttl", "2s", "--scan-workers", "0"}
	nodes := []*testserver.Server{testserver.Start(t, ladingBin, flags...), testserver.Start(t, ladingBin, flags...)}
	_, img, _ := testImages(t)
	layout := singleLayout(t, img, nil)
	push := func(n *testserver.Server, tag string) {
		run(t, []string{"DOCKER_CONFIG=" + n.DockerConfig(t)}, crane, "push", "--insecure", layout, n.Addr+"/multi/app:"+tag)
	}

	var before []string
	for i := range 4 {
		tag := fmt.Sprint("a", i)
		push(nodes[i%2], tag)
		before = append(before, tag)
	}
	got := sink.waitPushes(t, before, 30*time.Second)
	time.Sleep(3 * time.Second) // a second node delivering too would have done so by now
	for tag, n := range sink.pushes() {
		if n != 1 {
			t.Errorf("push event of %s delivered %d times in steady state, want once (%v)", tag, n, got)
		}
	}

	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	holders := map[string]string{}
	rows, err := conn.Query(context.Background(), "SELECT name, holder FROM leases")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, holder string
		if err := rows.Scan(&name, &holder); err != nil {
			t.Fatal(err)
		}
		holders[name] = holder
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	nodeOf := func(holder string) int {
		parts := strings.Split(holder, "/")
		if len(parts) == 3 {
			pid, _ := strconv.Atoi(parts[1])
			for i, n := range nodes {
				if n.Pid() == pid {
					return i
				}
			}
		}
		return -1
	}
	for _, duty := range []string{"duty/gc", "duty/lifecycle", "duty/upload-purge", "duty/advisory-sync"} {
		if nodeOf(holders[duty]) < 0 {
			t.Errorf("lease %s held by %q, not by one of the nodes (leases: %v)", duty, holders[duty], holders)
		}
	}
	var webhook string
	for name := range holders {
		if strings.HasPrefix(name, "webhook/") {
			webhook = name
		}
	}
	deliverer := nodeOf(holders[webhook])
	if deliverer < 0 {
		t.Fatalf("no node holds a webhook's lease (leases: %v)", holders)
	}

	// The delivering node dies; pushes go on at the other, whose lease takes over.
	nodes[deliverer].Kill()
	survivor := nodes[1-deliverer]
	var after []string
	for i := range 3 {
		tag := fmt.Sprint("b", i)
		push(survivor, tag)
		after = append(after, tag)
	}
	sink.waitPushes(t, append(before, after...), 30*time.Second)
}

// sharedStore gives the nodes of one registry what they share: a PostgreSQL schema, a
// versitygw bucket (its credentials in the test's environment) and the secret key sealing the
// stored access keys (LADING_SECRET_KEY, set for the test, which the nodes it starts inherit).
func sharedStore(t *testing.T) (metadata string, s3 *testserver.S3) {
	t.Helper()
	metadata = pgtest.New(t).Schema(t)
	s3 = testserver.StartS3(t)
	s3.SetEnv(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv(auth.SecretKeyEnv, base64.StdEncoding.EncodeToString(key))
	return metadata, s3
}
