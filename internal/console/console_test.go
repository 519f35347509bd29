package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

func TestSignedOutIsRefused(t *testing.T) {
	fx := newFixture(t)
	c := fx.client()
	for _, path := range []string{Prefix, Prefix + "repositories", Prefix + "image?repository=team/app&digest=" + imageDgst, Prefix + "settings"} {
		status, loc, body := fx.get(c, path)
		if status != http.StatusSeeOther || !strings.HasPrefix(loc, Prefix+"signin?next=") || strings.Contains(body, "team/app") {
			t.Errorf("GET %s signed out: %d %q", path, status, loc)
		}
	}
	for _, path := range []string{Prefix + "settings/scanning", Prefix + "settings/keys", Prefix + "repository/scan"} {
		if status, _, _ := fx.post(c, path, url.Values{"scan_type": {"ENHANCED"}}); status != http.StatusForbidden {
			t.Errorf("POST %s signed out: %d", path, status)
		}
	}
	if fx.store.pol.ScanType != policy.ScanTypeBasic {
		t.Errorf("a signed-out POST changed the policy: %+v", fx.store.pol)
	}
	// A browser's GET / goes to the console; an API client's does not match.
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	if fx.h.Handles(req) {
		t.Error("GET / without Accept: text/html is the console's")
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if !fx.h.Handles(req) {
		t.Error("a browser's GET / is not the console's")
	}
}

func TestSignIn(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		want   int
	}{
		{"right secret", testSecret, http.StatusSeeOther},
		{"wrong secret", "wrong", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			c := fx.client()
			status, _ := fx.signIn(c, tt.secret)
			if status != tt.want {
				t.Fatalf("sign-in: %d, want %d", status, tt.want)
			}
			st, _, _ := fx.get(c, Prefix)
			if signedIn := st == http.StatusOK; signedIn != (tt.want == http.StatusSeeOther) {
				t.Errorf("overview after sign-in: %d", st)
			}
		})
	}
}

func TestSignInThrottledAndForged(t *testing.T) {
	fx := newFixture(t)
	c := fx.client()
	for range 3 {
		fx.signIn(c, "wrong")
	}
	if status, _ := fx.signIn(c, testSecret); status != http.StatusTooManyRequests {
		t.Errorf("sign-in after failures: %d, want 429", status)
	}
	// A sign-in post without the sign-in cookie's token (login CSRF) is refused.
	fresh := newFixture(t)
	if status, _, _ := fresh.post(fresh.client(), Prefix+"signin", url.Values{"access_key_id": {testKeyID}, "secret_access_key": {testSecret}}); status != http.StatusForbidden {
		t.Errorf("sign-in without CSRF token: %d", status)
	}
}

func TestSessionExpires(t *testing.T) {
	fx := newFixture(t)
	c := fx.client()
	fx.signIn(c, testSecret)
	if status, _, _ := fx.get(c, Prefix+"repositories"); status != http.StatusOK {
		t.Fatalf("signed in: %d", status)
	}
	fx.now = fx.now.Add(DefaultSessionTTL + time.Second)
	status, loc, _ := fx.get(c, Prefix+"repositories")
	if status != http.StatusSeeOther || !strings.Contains(loc, "expired=1") {
		t.Errorf("expired session: %d %q", status, loc)
	}
}

func TestCSRF(t *testing.T) {
	fx := newFixture(t)
	c := fx.client()
	_, csrf := fx.signIn(c, testSecret)
	form := url.Values{"scan_type": {"ENHANCED"}, "rule1_frequency": {policy.FrequencyContinuous}, "rule1_filters": {"prod*"}}
	for _, tok := range []string{"", "forged", csrf + "x"} {
		f := url.Values{"csrf": {tok}}
		for k, v := range form {
			f[k] = v
		}
		if status, _, _ := fx.post(c, Prefix+"settings/scanning", f); status != http.StatusForbidden {
			t.Errorf("POST with csrf %q: %d", tok, status)
		}
	}
	if fx.store.pol.ScanType != policy.ScanTypeBasic {
		t.Fatalf("a forged POST changed the policy")
	}
	form.Set("csrf", csrf)
	if status, loc, _ := fx.post(c, Prefix+"settings/scanning", form); status != http.StatusSeeOther || !strings.Contains(loc, "notice=saved") {
		t.Fatalf("POST with the token: %d %q", status, loc)
	}
	if fx.store.pol.ScanType != policy.ScanTypeEnhanced || len(fx.store.pol.Rules) != 1 || fx.store.pol.Rules[0].Filters[0].Value != "prod*" {
		t.Errorf("policy after save: %+v", fx.store.pol)
	}
}

func TestPages(t *testing.T) {
	fx := newFixture(t)
	c := fx.client()
	fx.signIn(c, testSecret)
	img := Prefix + "image?" + url.Values{"repository": {"team/app"}, "digest": {imageDgst}}.Encode()
	tests := []struct {
		path      string
		status    int
		want, not []string
	}{
		{Prefix, 200, []string{"CVE-2021-44228", `id="db-version">7<`, `<th scope="row">2026-12-01</th>
<td><span class="n">1</span>`}, nil},
		{Prefix + "repositories", 200, []string{"team/app</a></td><td>1</td>", "other</a></td><td>0</td>"}, nil},
		{Prefix + "repositories?sort=images&order=desc", 200, []string{`aria-sort="descending"`, "team/app</a></td><td>1</td>"}, nil},
		{Prefix + "repositories?q=team", 200, []string{"team/app"}, []string{">other<"}},
		{Prefix + "repositories?page=999&sort=bogus", 200, []string{"team/app"}, nil},
		{Prefix + "repository?name=team/app", 200, []string{"&lt;script&gt;", "Scan</button>", `/team/app</code>`}, []string{evilText}},
		{Prefix + "repository?name=team/app&q=v1&page=9", 200, []string{"cccccccccccc", "Images: 1,"}, nil},
		{Prefix + "repository?name=team/app&q=nomatch", 200, []string{"No images match"}, []string{"cccccccccccc"}},
		{Prefix + "repository?name=nope", 404, []string{"Not found"}, nil},
		{img, 200, []string{"log4j-core", "/opt/app/lib/log4j-core-2.14.1.jar", "COPY lib/ /opt/app/lib/ &lt;script&gt;"}, []string{evilText}},
		{img + "&severity=LOW", 200, []string{"No findings match"}, nil},
		{Prefix + "image?repository=team/app&digest=sha256:0000", 404, nil, nil},
		{Prefix + "vulnerability?id=CVE-2021-44228", 200, []string{"Log4Shell &lt;script&gt;", "Active in 1 image.", "team/app", "CVSS:3.1/AV:N", "2.15.0"}, []string{evilText}},
		{Prefix + "vulnerability?id=CVE-0000-0000", 404, nil, nil},
		{Prefix + "settings", 200, []string{"Registry scanning configuration", "LAKOTHER000000000000", "<td>audit</td><td><code>https://hooks.example</code></td><td>2</td>",
			"failing (2 attempts)", "HTTP 503 &lt;script&gt;"}, []string{evilText}},
		{Prefix + "no/such/page", 404, nil, nil},
	}
	for _, tt := range tests {
		status, _, body := fx.get(c, tt.path)
		if status != tt.status {
			t.Errorf("GET %s: %d, want %d", tt.path, status, tt.status)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q", tt.path, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(body, n) {
				t.Errorf("GET %s: holds %q", tt.path, n)
			}
		}
	}
	// Sorted by image count, either way.
	for _, order := range []string{"asc", "desc"} {
		_, _, body := fx.get(c, Prefix+"repositories?sort=images&order="+order)
		if app, other := strings.Index(body, ">team/app<"), strings.Index(body, ">other<"); (app < other) != (order == "desc") {
			t.Errorf("sort=images&order=%s: team/app at %d, other at %d", order, app, other)
		}
	}
	// The log4j finding sits under the layer whose step added it, not under the base layer.
	_, _, body := fx.get(c, img)
	l1, l2 := strings.Index(body, `id="layer-1"`), strings.Index(body, `id="layer-2"`)
	if f := strings.Index(body, "CVE-2021-44228"); l1 < 0 || l2 < 0 || f < l2 {
		t.Errorf("layers at %d, %d; the finding at %d", l1, l2, f)
	}
}

func TestForbiddenPages(t *testing.T) {
	fx := newFixture(t)
	fx.authz.deny["ecr:DescribeImages"] = true
	fx.authz.deny["inspector2:ListFindings"] = true
	fx.authz.deny["ecr:PutRegistryScanningConfiguration"] = true
	c := fx.client()
	_, csrf := fx.signIn(c, testSecret)
	for _, path := range []string{Prefix, Prefix + "repository?name=team/app", Prefix + "vulnerability?id=CVE-2021-44228"} {
		if status, _, body := fx.get(c, path); status != http.StatusForbidden || !strings.Contains(body, "is not authorized to perform") {
			t.Errorf("GET %s: %d", path, status)
		}
	}
	if status, _, _ := fx.post(c, Prefix+"settings/scanning", url.Values{"csrf": {csrf}, "scan_type": {"ENHANCED"}}); status != http.StatusForbidden {
		t.Errorf("POST settings without permission: %d", status)
	}
}

func TestManualScanNotices(t *testing.T) {
	tests := []struct {
		err    error
		notice string
	}{
		{nil, "scan-started"},
		{scanning.ErrQuotaExceeded, "quota"},
		{scanning.ErrEnhancedManualScan, "enhanced"},
	}
	for _, tt := range tests {
		fx := newFixture(t)
		fx.scans.startErr = tt.err
		c := fx.client()
		_, csrf := fx.signIn(c, testSecret)
		status, loc, _ := fx.post(c, Prefix+"repository/scan", url.Values{"csrf": {csrf}, "repository": {"team/app"}, "digest": {imageDgst}})
		if status != http.StatusSeeOther || !strings.HasSuffix(loc, "notice="+tt.notice) || fx.scans.started != 1 {
			t.Errorf("%v: %d %q (started %d)", tt.err, status, loc, fx.scans.started)
			continue
		}
		if _, _, body := fx.get(c, loc); !strings.Contains(body, notices[tt.notice][:min(20, len(notices[tt.notice]))]) {
			t.Errorf("%v: the repository page does not say %q", tt.err, notices[tt.notice])
		}
	}
}

func TestAccessKeys(t *testing.T) {
	fx := newFixture(t)
	c := fx.client()
	_, csrf := fx.signIn(c, testSecret)
	status, _, body := fx.post(c, Prefix+"settings/keys", url.Values{"csrf": {csrf}, "name": {"robot"}, "preset": {"AmazonEC2ContainerRegistryReadOnly"}})
	if status != http.StatusOK || len(fx.keys.keys) != 3 || !strings.Contains(body, fx.keys.keys[2].Secret) {
		t.Fatalf("create: %d, %d keys", status, len(fx.keys.keys))
	}
	if _, _, page := fx.get(c, Prefix+"settings"); strings.Contains(page, fx.keys.keys[2].Secret) {
		t.Error("the secret is shown again")
	}
	for _, tt := range []struct {
		form url.Values
		want int
	}{
		{url.Values{"name": {"bad name!"}, "preset": {"AmazonEC2ContainerRegistryReadOnly"}}, http.StatusBadRequest},
		{url.Values{"name": {"x"}, "preset": {"NoSuchPreset"}}, http.StatusBadRequest},
		{url.Values{"name": {"robot"}, "preset": {"AmazonEC2ContainerRegistryReadOnly"}}, http.StatusConflict},
	} {
		tt.form.Set("csrf", csrf)
		if status, _, _ := fx.post(c, Prefix+"settings/keys", tt.form); status != tt.want {
			t.Errorf("create %v: %d, want %d", tt.form, status, tt.want)
		}
	}
	if status, _, _ := fx.post(c, Prefix+"settings/keys/delete", url.Values{"csrf": {csrf}, "id": {testKeyID}}); status != http.StatusBadRequest {
		t.Errorf("deleting the session's own key: %d", status)
	}
	if status, _, _ := fx.post(c, Prefix+"settings/keys/delete", url.Values{"csrf": {csrf}, "id": {"LAKOTHER000000000000"}}); status != http.StatusSeeOther || len(fx.keys.keys) != 2 {
		t.Errorf("delete: %d, %d keys", status, len(fx.keys.keys))
	}
}
