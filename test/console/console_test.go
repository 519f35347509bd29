package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// The seed image: neo4j-like holds log4j-core 2.14.1 (Log4Shell) in a known layer.
const (
	log4shell  = "CVE-2021-44228"
	log4jLayer = "sha256:77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857"
	log4jPath  = "/var/lib/neo4j/lib/log4j-core-2.14.1.jar"
	repo       = "console-prod"
	// xssID is an advisory the test writes, whose text holds markup the pages must show as text.
	xssID = "LADING-TEST-XSS-1"
)

// screenshotsEnv names a folder (relative to the module root) that the screenshots are also
// written to: `LADING_CONSOLE_SCREENSHOTS=docs/console go test ./test/console/` regenerates
// the README's.
const screenshotsEnv = "LADING_CONSOLE_SCREENSHOTS"

type story struct {
	t   *testing.T
	srv *testserver.Server
	cli string
	ctx context.Context
	// shots is where screenshots go besides the test's artifact directory ("" for nowhere).
	shots string
}

func newStory(t *testing.T, extra ...string) *story {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; run `bash .ci/install-tools` (it installs Debian's chromium)")
	}
	s := &story{t: t, srv: testserver.Start(t, ladingBin, extra...), cli: "/usr/bin/aws"} // Debian's AWS CLI v2
	if _, err := os.Stat(s.cli); err != nil {
		s.cli = testserver.Tool(t, "aws")
	}
	if dir := os.Getenv(screenshotsEnv); dir != "" {
		root, err := testserver.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		s.shots = filepath.Join(root, dir)
		if err := os.MkdirAll(s.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1280, 900),
		chromedp.NoSandbox) // the tests run as root in CI, where Chromium's sandbox refuses to start
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	s.ctx = ctx
	return s
}

func (s *story) url(path string) string { return s.srv.URL() + path }

func (s *story) do(steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, steps...); err != nil {
		loc, _ := chromedp.Run(s.ctx, chromedp.Location())
		s.t.Fatalf("browser at %s: %v", loc, err)
	}
}

// submit clicks a form's button and returns the status of the page it leads to.
func (s *story) submit(sel string) int64 {
	s.t.Helper()
	resp, err := chromedp.RunResponse(s.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		s.t.Fatalf("submit %s: %v", sel, err)
	}
	return resp.Status
}

func (s *story) text(sel string) string {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		s.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (s *story) location() string {
	s.t.Helper()
	loc, err := chromedp.Run(s.ctx, chromedp.Location())
	if err != nil {
		s.t.Fatal(err)
	}
	return loc
}

// screenshot saves the page as name.png in the artifact directory (and the screenshots folder).
func (s *story) screenshot(name string) {
	s.t.Helper()
	png, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, dir := range []string{s.t.ArtifactDir(), s.shots} {
		if dir == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *story) aws(args ...string) []byte {
	s.t.Helper()
	cmd := exec.Command(s.cli, append(args, "--endpoint-url", s.srv.URL(), "--output", "json")...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+testserver.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("aws %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// signIn fills the sign-in form (the browser is on it) with the admin key's id and returns
// the status it leads to.
func (s *story) signIn(secret string) int64 {
	s.t.Helper()
	return s.signInAs(testserver.AccessKeyID, secret)
}

func (s *story) signInAs(id, secret string) int64 {
	s.t.Helper()
	s.do(chromedp.WaitVisible(chromedp.CSS("#access_key_id")),
		chromedp.SetValue(chromedp.CSS("#access_key_id"), id),
		chromedp.SetValue(chromedp.CSS("#secret_access_key"), secret))
	return s.submit("#signin")
}

// xssAdvisory writes an OSV record about log4j-core whose text holds markup.
func xssAdvisory(t *testing.T) string {
	dir := t.TempDir()
	rec := map[string]any{
		"schema_version": "1.6.0", "id": xssID, "modified": "2026-01-01T00:00:00Z", "published": "2026-01-01T00:00:00Z",
		"summary": `<img src=x onerror="document.title='pwned'">`,
		"details": `<script>document.title='pwned'</script> an advisory whose text is markup`,
		"affected": []any{map[string]any{"package": map[string]any{"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
			"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{map[string]any{"introduced": "0"}, map[string]any{"fixed": "2.15.0"}}}}}},
		"references": []any{map[string]any{"type": "WEB", "url": "https://example.com/<script>"}},
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, xssID+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConsoleStory(t *testing.T) {
	// A webhook nobody answers, for the settings page's delivery state.
	s := newStory(t, "--event-webhook", "http://127.0.0.1:9/hook")
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", s.srv.DataDir, "--log-level", "warn",
		testfiles.Path(t, "osv-mini", "Maven", "all.zip"), xssAdvisory(t))
	s.aws("ecr", "create-repository", "--repository-name", repo)

	// Signed out, a page's URL leads to the sign-in form, and shows nothing of the page.
	s.do(chromedp.Navigate(s.url("/console/settings")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if loc := s.location(); !strings.Contains(loc, "/console/signin?next=") {
		t.Fatalf("signed out, /console/settings went to %s", loc)
	}
	s.screenshot("signin")
	if st := s.signIn("not-the-secret"); st != http.StatusUnauthorized {
		t.Errorf("wrong secret: HTTP %d", st)
	}
	if msg := s.text("p[role=alert]"); !strings.Contains(msg, "Wrong access key") {
		t.Errorf("wrong secret: %q", msg)
	}
	if st := s.signIn(testserver.SecretAccessKey); st != http.StatusOK {
		t.Fatalf("sign-in: HTTP %d", st)
	}
	if loc := s.location(); !strings.HasSuffix(loc, "/console/settings") {
		t.Fatalf("after sign-in: %s", loc)
	}
	s.checkCookie()

	// Settings: enhanced scanning, the repository scanned continuously; the API sees it.
	s.do(chromedp.Click(chromedp.CSS(`input[name=scan_type][value=ENHANCED]`)),
		chromedp.SetValue(chromedp.CSS("#rule1_frequency"), "CONTINUOUS_SCAN"),
		chromedp.SetValue(chromedp.CSS("#rule1_filters"), "console-*"))
	if st := s.submit("#save-scanning"); st != http.StatusOK {
		t.Fatalf("save scanning configuration: HTTP %d", st)
	}
	if n := s.text("#notice"); !strings.Contains(n, "saved") {
		t.Errorf("after saving: %q", n)
	}
	var cfg struct {
		ScanningConfigurations []struct {
			ScanFrequency      string `json:"scanFrequency"`
			AppliedScanFilters []struct {
				Filter string `json:"filter"`
			} `json:"appliedScanFilters"`
		} `json:"scanningConfigurations"`
	}
	if err := json.Unmarshal(s.aws("ecr", "batch-get-repository-scanning-configuration", "--repository-names", repo), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScanningConfigurations) != 1 || cfg.ScanningConfigurations[0].ScanFrequency != "CONTINUOUS_SCAN" ||
		len(cfg.ScanningConfigurations[0].AppliedScanFilters) != 1 || cfg.ScanningConfigurations[0].AppliedScanFilters[0].Filter != "console-*" {
		t.Fatalf("batch-get-repository-scanning-configuration after the console's change: %+v", cfg)
	}
	if hooks := s.text("#webhooks"); !strings.Contains(hooks, "http://127.0.0.1:9") {
		t.Errorf("webhooks on the settings page:\n%s", hooks)
	}
	// A suppression rule made through Inspector's API is listed there too.
	s.aws("inspector2", "create-filter", "--name", "accepted-risk", "--action", "SUPPRESS", "--reason", "tracked in RISK-1",
		"--filter-criteria", `{"vulnerabilityId":[{"comparison":"EQUALS","value":"CVE-2000-0001"}]}`)
	s.do(chromedp.Navigate(s.url("/console/settings")), chromedp.WaitVisible(chromedp.CSS("#supp-h")))
	if rules := s.text("#rules-table"); !strings.Contains(rules, "accepted-risk") || !strings.Contains(rules, "tracked in RISK-1") ||
		!strings.Contains(rules, "vulnerabilityId = CVE-2000-0001") {
		t.Errorf("suppression rules on the settings page:\n%s", rules)
	}
	// The rescan duration, changed here, is what Inspector's GetConfiguration reports.
	s.do(chromedp.SetValue(chromedp.CSS("#rescan_duration"), "DAYS_30"))
	if st := s.submit("#save-rescan"); st != http.StatusOK {
		t.Fatalf("save rescan duration: HTTP %d", st)
	}
	if cur := s.text("#rescan-current"); cur != "DAYS_30" {
		t.Errorf("rescan duration after saving: %q", cur)
	}
	var conf struct {
		ECRConfiguration struct {
			RescanDurationState struct {
				RescanDuration string `json:"rescanDuration"`
			} `json:"rescanDurationState"`
		} `json:"ecrConfiguration"`
	}
	if err := json.Unmarshal(s.aws("inspector2", "get-configuration"), &conf); err != nil || conf.ECRConfiguration.RescanDurationState.RescanDuration != "DAYS_30" {
		t.Errorf("inspector2 get-configuration after the console's change: %+v %v", conf, err)
	}

	// Push the seed image; its page shows the scan in progress, then Log4Shell under the layer
	// whose step added log4j-core (the page refreshes itself when the scan completes).
	skopeo := testserver.Tool(t, "skopeo")
	cmd := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(s.srv.DockerConfig(t), "config.json"),
		"oci-archive:"+testfiles.Path(t, "images", "debian-family.tar")+":neo4j-like", "docker://"+s.srv.Addr+"/"+repo+":4.4.0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	s.do(chromedp.Navigate(s.url("/console/repository?name="+repo)), chromedp.WaitVisible(chromedp.CSS(`#images a[href*="/console/image?"]`)))
	if f := s.text("#frequency"); f != "CONTINUOUS" {
		t.Errorf("repository page says scan frequency %q", f)
	}
	s.do(chromedp.Click(chromedp.CSS(`#images a[href*="/console/image?"]`)))
	layer := fmt.Sprintf(`li[data-digest=%q]`, log4jLayer)
	s.do(chromedp.WaitVisible(chromedp.CSS(layer + ` table.layer-findings a[href*="` + log4shell + `"]`)))
	got := s.text(layer)
	if !strings.Contains(got, log4shell) || !strings.Contains(got, log4jPath) {
		t.Errorf("the log4j layer shows:\n%s", got)
	}
	step := s.text(layer + " summary code")
	if step == "" || step == "(no history)" {
		t.Errorf("the log4j layer has no Dockerfile step: %q", step)
	}
	base := s.text(`li#layer-1`)
	if strings.Contains(base, log4shell) {
		t.Errorf("Log4Shell is listed under the base layer too:\n%s", base)
	}
	s.screenshot("image")
	// The image's SBOM, in both formats, to the signed-in user.
	for format, want := range map[string]string{"CYCLONEDX_1_4": `"bomFormat"`, "SPDX_2_3": `"spdxVersion"`} {
		href, err := chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.querySelector('a[href*="format=`+format+`"]').href`))
		if err != nil {
			t.Fatalf("SBOM link %s: %v", format, err)
		}
		if doc := s.fetch(href); !strings.Contains(doc, want) || !strings.Contains(doc, "log4j-core") {
			t.Errorf("SBOM %s: %.300s", format, doc)
		}
	}
	// The SBOM referrer is attached once the scan completes: reload until it shows.
	for i := 0; i < 20; i++ {
		if n, err := chromedp.Run(s.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#refs-h").length`)); err == nil && n > 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
		s.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#findings")))
	}
	if refs := s.text("#refs-h + table"); !strings.Contains(refs, "application/vnd.cyclonedx+json") {
		t.Errorf("referrers (the SBOM attached on scan):\n%s", refs)
	}
	// At a narrow width the page still shows its findings.
	s.do(chromedp.EmulateViewport(420, 900), chromedp.WaitVisible(chromedp.CSS(layer)))
	s.screenshot("image-narrow")
	s.do(chromedp.EmulateViewport(1280, 900))

	// The vulnerability: where is it active?
	s.do(chromedp.Click(chromedp.CSS(layer+` a[href*="`+log4shell+`"]`)), chromedp.WaitVisible(chromedp.CSS("#exposures")))
	if id := s.text("#vuln-id"); id != log4shell {
		t.Errorf("vulnerability page of %q", id)
	}
	if where := s.text("#exposures"); !strings.Contains(where, repo) || !strings.Contains(where, "4.4.0") || !strings.Contains(where, log4jPath) {
		t.Errorf("exposures:\n%s", where)
	}
	if kev := s.text("#kev"); !strings.Contains(kev, "Known exploited") {
		t.Errorf("KEV: %q", kev)
	}
	s.screenshot("vulnerability")

	// Advisory text holding markup is shown as text, and runs nothing.
	s.do(chromedp.Navigate(s.url("/console/vulnerability?id="+xssID)), chromedp.WaitVisible(chromedp.CSS("#description")))
	if d := s.text("#description"); !strings.Contains(d, "<script>document.title='pwned'</script>") {
		t.Errorf("description: %q", d)
	}
	if title, err := chromedp.Run(s.ctx, chromedp.Title()); err != nil || strings.Contains(title, "pwned") {
		t.Errorf("title %q %v: the advisory's markup ran", title, err)
	}
	if n, err := chromedp.Run(s.ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`)); err != nil || n != 0 {
		t.Errorf("markup elements in the page from the advisory: %d %v", n, err)
	}

	// The overview and the repositories, once the scan is in.
	s.do(chromedp.Navigate(s.url("/console/")), chromedp.WaitVisible(chromedp.CSS("section[aria-labelledby=top-vulns] table")))
	if v := s.text("section[aria-labelledby=top-vulns] table"); !strings.Contains(v, log4shell) {
		t.Errorf("overview's vulnerabilities:\n%s", v)
	}
	// Today's row of the trend: the date, then the findings opened (the scan's), then closed.
	if f := strings.Fields(s.text("#trend tbody tr:last-child")); len(f) < 3 || f[0] != time.Now().UTC().Format("2006-01-02") || f[1] == "0" {
		t.Errorf("today's row of the trend: %q", f)
	}
	if n := s.text("#images-scanned"); n != "1" {
		t.Errorf("overview: %s images scanned", n)
	}
	s.screenshot("overview")
	s.do(chromedp.Navigate(s.url("/console/repositories?sort=critical&order=desc")), chromedp.WaitVisible(chromedp.CSS("#repos")))
	if rows := s.text("#repos tbody"); !strings.Contains(rows, repo) || !strings.Contains(rows, "CONTINUOUS") {
		t.Errorf("repositories:\n%s", rows)
	}
	s.screenshot("repositories")
	// htmx runs under the console's Content-Security-Policy: typing a filter updates the table
	// in place (no page load) and the address.
	if typ, err := chromedp.Run(s.ctx, chromedp.Evaluate[string](`typeof htmx`)); err != nil || typ != "object" {
		t.Errorf("htmx did not load: %q %v", typ, err)
	}
	s.do(chromedp.SendKeys(chromedp.CSS("#q"), "zzz"), chromedp.WaitVisible(chromedp.CSS(`#repos td[colspan="6"]`)))
	if loc := s.location(); !strings.Contains(loc, "q=zzz") {
		t.Errorf("after filtering in place the address is %s", loc)
	}
	s.do(chromedp.Navigate(s.url("/console/repository?name="+repo)), chromedp.WaitVisible(chromedp.CSS("#images")))
	s.screenshot("repository")

	// Coverage: the pushed image, scanned continuously.
	s.do(chromedp.Navigate(s.url("/console/coverage")), chromedp.WaitVisible(chromedp.CSS("#coverage table")))
	if rows := s.text("#coverage tbody"); !strings.Contains(rows, repo) || !strings.Contains(rows, "4.4.0") || !strings.Contains(rows, "ACTIVE") ||
		!strings.Contains(rows, "SUCCESSFUL") || !strings.Contains(rows, "CONTINUOUS") {
		t.Errorf("coverage:\n%s", rows)
	}
	s.screenshot("coverage")
	s.do(chromedp.Navigate(s.url("/console/coverage?status=INACTIVE")), chromedp.WaitVisible(chromedp.CSS("#coverage table")))
	if rows := s.text("#coverage tbody"); strings.Contains(rows, repo) {
		t.Errorf("coverage filtered INACTIVE lists the active image:\n%s", rows)
	}

	// A suppression rule made in Settings takes Log4Shell out of the image's ACTIVE findings;
	// the SUPPRESSED view shows it.
	s.do(chromedp.Navigate(s.url("/console/settings")), chromedp.WaitVisible(chromedp.CSS("#rule-form")),
		chromedp.SetValue(chromedp.CSS("#rule_name"), "log4shell-mitigated"),
		chromedp.SetValue(chromedp.CSS("#rule_reason"), "JNDI lookups disabled (RISK-2)"),
		chromedp.SetValue(chromedp.CSS("#rule_vulnerability_ids"), log4shell),
		chromedp.SetValue(chromedp.CSS("#rule_repositories"), "console-*"))
	if st := s.submit("#save-rule"); st != http.StatusOK {
		t.Fatalf("create suppression rule: HTTP %d", st)
	}
	if rules := s.text("#rules-table"); !strings.Contains(rules, "log4shell-mitigated") || !strings.Contains(rules, "ecrImageRepositoryName starts with console-") {
		t.Errorf("rules after creating one:\n%s", rules)
	}
	s.screenshot("settings")
	imagePage := s.url("/console/image?" + url.Values{"repository": {repo}, "digest": {s.imageDigest()}}.Encode())
	s.do(chromedp.Navigate(imagePage+"&status=ACTIVE"), chromedp.WaitVisible(chromedp.CSS("#findings table")))
	if rows := s.text("#findings tbody"); strings.Contains(rows, log4shell) {
		t.Errorf("the suppressed finding is still ACTIVE:\n%s", rows)
	}
	s.do(chromedp.Navigate(imagePage+"&status=SUPPRESSED"), chromedp.WaitVisible(chromedp.CSS("#findings table")))
	if rows := s.text("#findings tbody"); !strings.Contains(rows, log4shell) || !strings.Contains(rows, "SUPPRESSED") {
		t.Errorf("the SUPPRESSED view:\n%s", rows)
	}
	s.screenshot("image-suppressed")

	// Unknown things are 404 pages.
	for _, path := range []string{"/console/repository?name=nope", "/console/vulnerability?id=CVE-1999-0000", "/console/image?repository=" + repo + "&digest=sha256:00"} {
		resp, err := chromedp.RunResponse(s.ctx, chromedp.Navigate(s.url(path)))
		if err != nil || resp.Status != http.StatusNotFound {
			t.Errorf("GET %s: %v %v", path, resp, err)
		}
	}

	// A forged form post (the session's cookie, no CSRF token) is refused and changes nothing.
	cookies, err := chromedp.Call(s.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url("/console/")}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url("/console/settings/scanning"), strings.NewReader(url.Values{"scan_type": {"BASIC"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies.Cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged POST: HTTP %d", resp.StatusCode)
	}
	if out := string(s.aws("ecr", "get-registry-scanning-configuration")); !strings.Contains(out, "ENHANCED") {
		t.Errorf("the forged POST changed the configuration: %s", out)
	}

	// Sign out: the pages are refused again.
	s.do(chromedp.Navigate(s.url("/console/")), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/signout"] button`)))
	s.submit(`form[action="/console/signout"] button`)
	s.do(chromedp.Navigate(s.url("/console/repositories")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if loc := s.location(); !strings.Contains(loc, "/console/signin") {
		t.Errorf("signed out, /console/repositories went to %s", loc)
	}
}

// fetch GETs a console URL with the browser's cookies (a download the browser would save).
func (s *story) fetch(u string) string {
	s.t.Helper()
	cookies, err := chromedp.Call(s.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url("/console/")}})
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for _, c := range cookies.Cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: HTTP %d %v", u, resp.StatusCode, err)
	}
	return string(b)
}

// imageDigest is the digest of the story's image (tag 4.4.0), as the API reports it.
func (s *story) imageDigest() string {
	s.t.Helper()
	var out struct {
		ImageDetails []struct {
			ImageDigest string `json:"imageDigest"`
		} `json:"imageDetails"`
	}
	if err := json.Unmarshal(s.aws("ecr", "describe-images", "--repository-name", repo, "--image-ids", "imageTag=4.4.0"), &out); err != nil || len(out.ImageDetails) != 1 {
		s.t.Fatalf("describe-images: %+v %v", out, err)
	}
	return out.ImageDetails[0].ImageDigest
}

// checkCookie checks the session cookie's attributes as the browser holds them.
func (s *story) checkCookie() {
	s.t.Helper()
	res, err := chromedp.Call(s.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url("/console/")}})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "lading_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/console/" {
				s.t.Errorf("session cookie %+v", c)
			}
			return
		}
	}
	s.t.Errorf("no session cookie among %d", len(res.Cookies))
}

// An expired session is refused: with a session lifetime shorter than a second, the session a
// sign-in makes has expired by the page it leads to.
func TestConsoleSessionExpires(t *testing.T) {
	s := newStory(t, "--console-session-ttl", "1ns")
	// A browser at the server's root is sent to the console (and, signed out, to sign in).
	s.do(chromedp.Navigate(s.url("/")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if loc := s.location(); !strings.Contains(loc, "/console/signin?next=%2Fconsole%2F") {
		t.Errorf("the root led to %s", loc)
	}
	s.do(chromedp.Navigate(s.url("/console/repositories")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	s.signIn(testserver.SecretAccessKey)
	s.do(chromedp.WaitVisible(chromedp.CSS("#signin")))
	if msg := s.text("p[role=alert]"); !strings.Contains(msg, "expired") {
		t.Errorf("after an expired session: %q at %s", msg, s.location())
	}
}

// Under basic scanning the repository page's Scan button starts ECR's manual scan, through
// the same path as StartImageScan, and a second scan the same day is refused with a message.
func TestConsoleManualScan(t *testing.T) {
	s := newStory(t)
	const manual = "console-manual"
	s.aws("ecr", "create-repository", "--repository-name", manual)
	skopeo := testserver.Tool(t, "skopeo")
	cmd := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(s.srv.DockerConfig(t), "config.json"),
		"oci-archive:"+testfiles.Path(t, "images", "debian-family.tar")+":debian-base", "docker://"+s.srv.Addr+"/"+manual+":12")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	s.do(chromedp.Navigate(s.url("/console/repository?name="+manual)), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if st := s.signIn(testserver.SecretAccessKey); st != http.StatusOK {
		t.Fatalf("sign-in: HTTP %d", st)
	}
	if f := s.text("#frequency"); f != "MANUAL" {
		t.Errorf("scan frequency %q, want MANUAL", f)
	}
	for i, want := range []string{"Scan started", "less than 24 hours ago"} {
		if st := s.submit(`#images form[action="/console/repository/scan"] button`); st != http.StatusOK {
			t.Fatalf("scan %d: HTTP %d", i+1, st)
		}
		if n := s.text("#notice"); !strings.Contains(n, want) {
			t.Errorf("scan %d: %q, want %q", i+1, n, want)
		}
	}
}

// A key made in the console works with the API, and signed in with it the console shows what
// its policy allows and refuses the rest with a 403 page.
func TestConsolePermissions(t *testing.T) {
	s := newStory(t)
	s.aws("ecr", "create-repository", "--repository-name", "team/app")
	s.do(chromedp.Navigate(s.url("/console/settings")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if st := s.signIn(testserver.SecretAccessKey); st != http.StatusOK {
		t.Fatalf("sign-in: HTTP %d", st)
	}
	s.do(chromedp.SetValue(chromedp.CSS(`#create-key input[name=name]`), "reader"),
		chromedp.SetValue(chromedp.CSS(`#create-key select[name=preset]`), "AmazonEC2ContainerRegistryReadOnly"))
	if st := s.submit(`#create-key button`); st != http.StatusOK {
		t.Fatalf("create key: HTTP %d", st)
	}
	id, secret := s.text("#new-key-id"), s.text("#new-key-secret")
	if len(id) != 20 || len(secret) != 40 {
		t.Fatalf("new key %q / %d characters of secret", id, len(secret))
	}
	s.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#keys")))
	if page, err := chromedp.Run(s.ctx, chromedp.OuterHTML(chromedp.CSS("main"))); err != nil || strings.Contains(page, secret) {
		t.Errorf("the secret is shown again (%v)", err)
	}
	// The API takes the new key.
	cmd := exec.Command(s.cli, "ecr", "describe-repositories", "--endpoint-url", s.srv.URL(), "--output", "json")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "team/app") {
		t.Fatalf("describe-repositories with the console's key: %v\n%s", err, out)
	}

	s.submit(`form[action="/console/signout"] button`)
	s.do(chromedp.Navigate(s.url("/console/repositories")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if st := s.signInAs(id, secret); st != http.StatusOK {
		t.Fatalf("sign-in with the read-only key: HTTP %d", st)
	}
	if rows := s.text("#repos tbody"); !strings.Contains(rows, "team/app") {
		t.Errorf("the read-only key's repositories:\n%s", rows)
	}
	tests := []struct {
		path   string
		status int64
	}{
		{"/console/repository?name=team/app", http.StatusOK},
		{"/console/", http.StatusForbidden},         // inspector2:ListFindings
		{"/console/settings", http.StatusForbidden}, // ecr:GetRegistryScanningConfiguration
		{"/console/vulnerability?id=" + log4shell, http.StatusForbidden},
		{"/console/coverage", http.StatusForbidden}, // inspector2:ListCoverage
	}
	for _, tt := range tests {
		resp, err := chromedp.RunResponse(s.ctx, chromedp.Navigate(s.url(tt.path)))
		if err != nil || resp.Status != tt.status {
			t.Errorf("GET %s as the read-only key: %v %v, want %d", tt.path, resp, err, tt.status)
			continue
		}
		if tt.status == http.StatusForbidden {
			if msg := s.text("#error-message"); !strings.Contains(msg, "is not authorized to perform") {
				t.Errorf("GET %s: %q", tt.path, msg)
			}
		}
	}
	s.screenshot("forbidden")
}
