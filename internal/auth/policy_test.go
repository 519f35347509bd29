package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParsePolicyRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		kind      PolicyKind
		want      string // in the error
	}{
		{"not JSON", `{`, IdentityPolicy, "not valid JSON"},
		{"two values", `{"Statement":[]} {}`, IdentityPolicy, "more than one JSON value"},
		{"duplicate Effect", `{"Statement":[{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}]}`, IdentityPolicy, `"Effect" appears twice`},
		{"unknown top key", `{"Statement":[],"Extra":1}`, IdentityPolicy, `unknown element "Extra"`},
		{"bad version", `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, IdentityPolicy, "Version"},
		{"no statement", `{"Version":"2012-10-17"}`, IdentityPolicy, "no Statement"},
		{"empty statement", `{"Statement":[]}`, IdentityPolicy, "Statement is empty"},
		{"condition", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`, IdentityPolicy, "Condition is not supported"},
		{"not principal", `{"Statement":[{"Effect":"Deny","Action":"*","NotPrincipal":{"AWS":"*"}}]}`, ResourcePolicy, "NotPrincipal is not supported"},
		{"unknown statement key", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Actions":"x"}]}`, IdentityPolicy, `unknown element "Actions"`},
		{"lower-case effect", `{"Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}`, IdentityPolicy, "Effect"},
		{"action and not action", `{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"ecr:*","Resource":"*"}]}`, IdentityPolicy, "not both"},
		{"no action", `{"Statement":[{"Effect":"Allow","Resource":"*"}]}`, IdentityPolicy, "needs Action or NotAction"},
		{"bad action", `{"Statement":[{"Effect":"Allow","Action":"PutImage","Resource":"*"}]}`, IdentityPolicy, `action "PutImage"`},
		{"empty action list", `{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}`, IdentityPolicy, "empty list"},
		{"action not string", `{"Statement":[{"Effect":"Allow","Action":[1],"Resource":"*"}]}`, IdentityPolicy, "string or a list"},
		{"identity without resource", `{"Statement":[{"Effect":"Allow","Action":"*"}]}`, IdentityPolicy, "needs Resource or NotResource"},
		{"bad resource", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"repository/x"}]}`, IdentityPolicy, `resource "repository/x"`},
		{"policy variable", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:ecr:*:*:repository/${aws:username}/*"}]}`, IdentityPolicy, "policy variables"},
		{"principal in identity", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}]}`, IdentityPolicy, "Principal belongs"},
		{"resource policy without principal", `{"Statement":[{"Effect":"Allow","Action":"*"}]}`, ResourcePolicy, "needs a Principal"},
		{"service principal", `{"Statement":[{"Effect":"Allow","Action":"*","Principal":{"Service":"ecs.amazonaws.com"}}]}`, ResourcePolicy, `principal type "Service"`},
		{"role principal", `{"Statement":[{"Effect":"Allow","Action":"*","Principal":{"AWS":"arn:aws:iam::123456789012:role/x"}}]}`, ResourcePolicy, "role/x"},
		{"principal string", `{"Statement":[{"Effect":"Allow","Action":"*","Principal":"ci"}]}`, ResourcePolicy, "Principal must be"},
		{"too deep", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Sid":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}]}`, IdentityPolicy, "nested too deeply"},
		{"too large", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Sid":"` + strings.Repeat("x", MaxPolicySize) + `"}]}`, IdentityPolicy, "more than 10240"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy(tc.doc, tc.kind)
			if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrInvalidPolicy saying %q", err, tc.want)
			}
		})
	}
}

func TestParsePolicyForms(t *testing.T) {
	p, err := ParseResourcePolicy(`{"Version":"2012-10-17","Id":"x","Statement":{"Sid":"one","Effect":"Deny",
		"NotAction":["ecr:BatchGetImage","ecr:Get*"],"Principal":{"AWS":["arn:aws:iam::000000000000:user/ci","000000000000"]}}}`)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Statements[0]
	if len(p.Statements) != 1 || s.Sid != "one" || !s.Deny || !s.NotAction || len(s.Actions) != 2 || s.Resources != nil || len(s.Principals) != 2 {
		t.Fatalf("parsed %+v", p)
	}
	for _, name := range PresetNames() {
		doc, _ := PresetDocument(name)
		if _, err := ParseIdentityPolicy(doc); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*a*b*", "xxaxxbxx", true},
		{"team-a/*", "team-a/app", true},
		{"team-a/*", "team-b/app", false},
		{"", "", true},
		{"", "x", false},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 200), false}, // no exponential backtracking
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

const (
	testRegion  = "us-east-1"
	testAccount = "000000000000"
)

func repoARN(name string) string {
	return "arn:aws:ecr:" + testRegion + ":" + testAccount + ":repository/" + name
}

// policies is a PolicyStore holding fixed documents.
type policies struct{ registry, repos map[string]string }

func (p policies) ResourcePolicies(_ context.Context, repo string) (string, string, error) {
	return p.registry[""], p.repos[repo], nil
}

func (p policies) RepositoryPolicies(_ context.Context, repos []string) (string, map[string]string, error) {
	out := map[string]string{}
	for _, r := range repos {
		if doc, ok := p.repos[r]; ok {
			out[r] = doc
		}
	}
	return p.registry[""], out, nil
}

func key(name, doc string) Principal {
	return Principal{AccessKeyID: "LAK" + strings.ToUpper(name), Name: name, Policy: doc}
}

func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	pushTeamA := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload","ecr:PutImage","ecr:BatchCheckLayerAvailability"],
		 "Resource":"arn:aws:ecr:*:000000000000:repository/team-a/*"},
		{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`
	denySecret := `{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},
		{"Effect":"Deny","Action":"ecr:batchgetimage","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/secret"}]}`
	notAction := `{"Statement":[{"Effect":"Allow","NotAction":["ecr:Delete*","ecr:BatchDeleteImage"],"Resource":"*"}]}`
	notResource := `{"Statement":[{"Effect":"Allow","Action":"ecr:*","NotResource":"arn:aws:ecr:us-east-1:000000000000:repository/prod/*"}]}`
	readOnly, _ := PresetDocument(PresetECRReadOnly)
	st := policies{
		registry: map[string]string{"": `{"Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/banned"},"Action":"*","Resource":"*"}]}`},
		repos: map[string]string{
			"public":    `{"Statement":[{"Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`,
			"shared":    `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/push"},"Action":"ecr:BatchGetImage"}]}`,
			"locked":    `{"Statement":[{"Effect":"Deny","Principal":{"AWS":"000000000000"},"Action":"ecr:PutImage"}]}`,
			"delegated": `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"ecr:*"}]}`,
		},
	}
	az := NewAuthorizer(st, AuthorizerOptions{RegistryID: testAccount, Region: testRegion})
	anon := Principal{}
	for _, tc := range []struct {
		name     string
		p        Principal
		action   string
		resource string
		want     error
		reason   DenyReason
	}{
		{"push to team-a", key("push", pushTeamA), "ecr:PutImage", repoARN("team-a/app"), nil, 0},
		{"push elsewhere", key("push", pushTeamA), "ecr:PutImage", repoARN("team-b/app"), ErrAccessDenied, NoAllow},
		{"push is not pull", key("push", pushTeamA), "ecr:BatchGetImage", repoARN("team-a/app"), ErrAccessDenied, NoAllow},
		{"registry-level needs *", key("push", pushTeamA), "ecr:GetAuthorizationToken", "*", nil, 0},
		{"repository grant is not registry-wide", key("push", pushTeamA), "ecr:DescribeRegistry", "*", ErrAccessDenied, NoAllow},
		{"repository policy grants a named key", key("push", pushTeamA), "ecr:BatchGetImage", repoARN("shared"), nil, 0},
		{"action case-insensitive", key("deny", denySecret), "ecr:BatchGetImage", repoARN("other"), nil, 0},
		{"deny overrides allow", key("deny", denySecret), "ecr:BatchGetImage", repoARN("secret"), ErrAccessDenied, IdentityDeny},
		{"deny is per action", key("deny", denySecret), "ecr:ListImages", repoARN("secret"), nil, 0},
		{"resource case-sensitive", key("deny", denySecret), "ecr:BatchGetImage", repoARN("Secret"), nil, 0},
		{"not action allows the rest", key("na", notAction), "inspector2:ListFindings", "*", nil, 0},
		{"not action excludes", key("na", notAction), "ecr:DeleteRepository", repoARN("x"), ErrAccessDenied, NoAllow},
		{"not action wildcard excludes", key("na", notAction), "ecr:BatchDeleteImage", repoARN("x"), ErrAccessDenied, NoAllow},
		{"not resource allows elsewhere", key("nr", notResource), "ecr:PutImage", repoARN("dev/app"), nil, 0},
		{"not resource covers *", key("nr", notResource), "ecr:GetAuthorizationToken", "*", nil, 0},
		{"not resource excludes", key("nr", notResource), "ecr:PutImage", repoARN("prod/app"), ErrAccessDenied, NoAllow},
		{"another account's ARN", key("x", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:ecr:*:111111111111:repository/*"}]}`), "ecr:PutImage", repoARN("a"), ErrAccessDenied, NoAllow},
		{"wildcard stays in its segment", key("x", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:ecr:*:*:repository/a"}]}`), "ecr:PutImage", repoARN("a/b"), ErrAccessDenied, NoAllow},
		{"? matches one", key("x", `{"Statement":[{"Effect":"Allow","Action":"ecr:PutIma?e","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/app?"}]}`), "ecr:PutImage", repoARN("app1"), nil, 0},
		{"describe wildcard", key("ro", `{"Statement":[{"Effect":"Allow","Action":"ecr:Describe*","Resource":"*"}]}`), "ecr:DescribeImages", repoARN("a"), nil, 0},
		{"describe wildcard is not list", key("ro", `{"Statement":[{"Effect":"Allow","Action":"ecr:Describe*","Resource":"*"}]}`), "ecr:ListImages", repoARN("a"), ErrAccessDenied, NoAllow},
		{"preset read-only pulls", Principal{AccessKeyID: "LAKRO", Name: "ro", Preset: PresetECRReadOnly}, "ecr:BatchGetImage", repoARN("a"), nil, 0},
		{"preset read-only does not push", Principal{AccessKeyID: "LAKRO", Name: "ro", Policy: readOnly}, "ecr:PutImage", repoARN("a"), ErrAccessDenied, NoAllow},
		{"inspector preset", Principal{AccessKeyID: "LAKI", Name: "i", Preset: PresetInspectorReadOnly}, "inspector2:ListFindings", "*", nil, 0},
		{"inspector preset is not ecr", Principal{AccessKeyID: "LAKI", Name: "i", Preset: PresetInspectorReadOnly}, "ecr:BatchGetImage", repoARN("a"), ErrAccessDenied, NoAllow},
		{"admin", Principal{AccessKeyID: "LAKA", Name: "a", Preset: PresetAdministrator}, "ecr:DeleteRepository", repoARN("a"), nil, 0},
		{"registry policy deny beats admin", Principal{AccessKeyID: "LAKB", Name: "banned", Preset: PresetAdministrator}, "ecr:ListImages", repoARN("a"), ErrAccessDenied, ResourceDeny},
		{"account deny covers every key", Principal{AccessKeyID: "LAKA", Name: "a", Preset: PresetAdministrator}, "ecr:PutImage", repoARN("locked"), ErrAccessDenied, ResourceDeny},
		{"account allow delegates", key("none", ""), "ecr:PutImage", repoARN("delegated"), ErrAccessDenied, NoAllow},
		{"no policy", key("none", ""), "ecr:BatchGetImage", repoARN("a"), ErrAccessDenied, NoAllow},
		{"anonymous pull of a public repository", anon, "ecr:BatchGetImage", repoARN("public"), nil, 0},
		{"anonymous push refused", anon, "ecr:PutImage", repoARN("public"), ErrAccessDenied, NoAllow},
		{"anonymous elsewhere refused", anon, "ecr:BatchGetImage", repoARN("shared"), ErrAccessDenied, NoAllow},
		{"keys may pull a public repository", key("none", ""), "ecr:GetDownloadUrlForLayer", repoARN("public"), nil, 0},
		{"another registry's repository", Principal{AccessKeyID: "LAKA", Name: "a", Preset: PresetAdministrator}, "ecr:PutImage", "arn:aws:ecr:us-east-1:111111111111:repository/locked", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := az.Authorize(ctx, tc.p, tc.action, tc.resource)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Authorize = %v, want %v", err, tc.want)
			}
			var ad *AccessDeniedError
			if errors.As(err, &ad) && (ad.Reason != tc.reason || ad.Action != tc.action || ad.Resource != tc.resource) {
				t.Fatalf("refusal %+v, want reason %d", ad, tc.reason)
			}
			// A listing's filter decides a repository as Authorize does, among others.
			if name, ok := strings.CutPrefix(tc.resource, az.RepositoryARN("")); ok {
				all := []string{"public", name, "locked", "shared", "zz"}
				allowed, err2 := az.AllowedRepositories(ctx, tc.p, tc.action, all)
				if err2 != nil {
					t.Fatal(err2)
				}
				var want []string
				for _, n := range all {
					if az.Allowed(ctx, tc.p, tc.action, az.RepositoryARN(n)) {
						want = append(want, n)
					}
				}
				if !slices.Equal(allowed, want) || slices.Contains(allowed, name) != (err == nil) {
					t.Fatalf("AllowedRepositories(%q) = %q, want %q", all, allowed, want)
				}
			}
		})
	}
}

func TestAccessDeniedMessages(t *testing.T) {
	az := NewAuthorizer(policies{}, AuthorizerOptions{RegistryID: testAccount, Region: testRegion})
	ctx := context.Background()
	ci := key("ci", `{"Statement":[{"Effect":"Deny","Action":"ecr:PutImage","Resource":"*"}]}`)
	for _, tc := range []struct {
		p      Principal
		action string
		want   string
	}{
		{ci, "ecr:BatchGetImage", "User: arn:aws:iam::000000000000:user/ci is not authorized to perform: ecr:BatchGetImage on resource: " +
			"arn:aws:ecr:us-east-1:000000000000:repository/app because no identity-based policy allows the ecr:BatchGetImage action"},
		{ci, "ecr:PutImage", "User: arn:aws:iam::000000000000:user/ci is not authorized to perform: ecr:PutImage on resource: " +
			"arn:aws:ecr:us-east-1:000000000000:repository/app with an explicit deny in an identity-based policy"},
		{Principal{}, "ecr:BatchGetImage", "User: anonymous is not authorized to perform: ecr:BatchGetImage on resource: " +
			"arn:aws:ecr:us-east-1:000000000000:repository/app because no resource-based policy allows the ecr:BatchGetImage action"},
	} {
		err := az.Authorize(ctx, tc.p, tc.action, az.RepositoryARN("app"))
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
}

func TestAuthorizeList(t *testing.T) {
	ctx := context.Background()
	az := NewAuthorizer(policies{}, AuthorizerOptions{RegistryID: testAccount, Region: testRegion})
	team := key("t", `{"Statement":[{"Effect":"Allow","Action":"ecr:DescribeRepositories","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team-a/*"}]}`)
	if err := az.AuthorizeList(ctx, team, "ecr:DescribeRepositories"); err != nil {
		t.Fatalf("a key allowed some repositories may list: %v", err)
	}
	if !az.Allowed(ctx, team, "ecr:DescribeRepositories", az.RepositoryARN("team-a/x")) || az.Allowed(ctx, team, "ecr:DescribeRepositories", az.RepositoryARN("b")) {
		t.Fatal("listing filter")
	}
	if err := az.AuthorizeList(ctx, key("n", ""), "ecr:DescribeRepositories"); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a key without the action listed: %v", err)
	}
	denied := key("d", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"ecr:Describe*","Resource":"*"}]}`)
	if err := az.AuthorizeList(ctx, denied, "ecr:DescribeRepositories"); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a denied key listed: %v", err)
	}
	if err := az.AuthorizeList(ctx, Principal{}, "ecr:DescribeRepositories"); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("anonymous listed: %v", err)
	}
	open := NewAuthorizer(policies{}, AuthorizerOptions{RegistryID: testAccount, Region: testRegion, AnonymousPull: true})
	if err := open.AuthorizeList(ctx, Principal{}, "ecr:DescribeRepositories"); err != nil {
		t.Fatalf("anonymous pull lists: %v", err)
	}
	if err := open.Authorize(ctx, Principal{}, "ecr:BatchGetImage", open.RepositoryARN("any")); err != nil {
		t.Fatalf("anonymous pull pulls: %v", err)
	}
	if err := open.Authorize(ctx, Principal{}, "ecr:PutImage", open.RepositoryARN("any")); err == nil {
		t.Fatal("anonymous pull pushes")
	}
}

func TestAttemptRecordsDecisions(t *testing.T) {
	az := NewAuthorizer(policies{}, AuthorizerOptions{RegistryID: testAccount, Region: testRegion})
	att := &Attempt{}
	ctx := WithAttempt(context.Background(), att)
	p := key("ci", `{"Statement":[{"Effect":"Allow","Action":"ecr:InitiateLayerUpload","Resource":"*"}]}`)
	_ = az.Authorize(ctx, p, "ecr:InitiateLayerUpload", az.RepositoryARN("a"))
	if att.Authz != AuthzAllowed || att.Action != "ecr:InitiateLayerUpload" || att.Name != "ci" {
		t.Fatalf("after an allowed call: %+v", att)
	}
	_ = az.Authorize(ctx, p, "ecr:CompleteLayerUpload", az.RepositoryARN("a"))
	if att.Authz != AuthzDenied || att.Action != "ecr:CompleteLayerUpload" || !strings.Contains(att.Denial, "not authorized") {
		t.Fatalf("a refusal overrides: %+v", att)
	}
	if az.Allowed(ctx, p, "ecr:PutImage", "*") || att.Action != "ecr:CompleteLayerUpload" {
		t.Fatalf("Allowed recorded: %+v", att)
	}
}

func TestIsMutating(t *testing.T) {
	for action, want := range map[string]bool{
		"ecr:PutImage": true, "ecr:BatchDeleteImage": true, "ecr:SetRepositoryPolicy": true, "ecr:UploadLayerPart": true,
		"ecr:BatchGetImage": false, "ecr:GetAuthorizationToken": false, "ecr:ListImages": false, "ecr:DescribeRepositories": false,
		"ecr:BatchCheckLayerAvailability": false, "inspector2:ListFindings": false, "inspector2:CreateFilter": true,
	} {
		if IsMutating(action) != want {
			t.Errorf("IsMutating(%s) = %v", action, !want)
		}
	}
}

// FuzzParsePolicy feeds arbitrary documents to the parser, which must never panic and, when it
// accepts a document, must have read statements that evaluate without panicking.
func FuzzParsePolicy(f *testing.F) {
	for _, name := range PresetNames() {
		doc, _ := PresetDocument(name)
		f.Add(doc, false)
	}
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"ecr:*","NotResource":["arn:aws:ecr:*:*:repository/a*"]}}`, false)
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["*","000000000000"]},"Action":"ecr:BatchGetImage"}]}`, true)
	f.Add(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}`, false)
	f.Add(`[[[[{"a":1,"a":2}]]]]`, true)
	f.Fuzz(func(t *testing.T, doc string, resource bool) {
		kind := IdentityPolicy
		if resource {
			kind = ResourcePolicy
		}
		p, err := parsePolicy(doc, kind)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v is not ErrInvalidPolicy", err)
			}
			return
		}
		if len(p.Statements) == 0 {
			t.Fatal("accepted a policy without statements")
		}
		for _, s := range p.Statements {
			if len(s.Actions) == 0 || (kind == IdentityPolicy && len(s.Resources) == 0) || (kind == ResourcePolicy) != (len(s.Principals) > 0) {
				t.Fatalf("accepted an incomplete statement %+v", s)
			}
		}
		req := request{action: "ecr:PutImage", resource: repoARN("a/b"), principal: "arn:aws:iam::000000000000:user/ci", account: testAccount}
		_ = p.evaluate(req, kind)
		_ = p.allowsAction(req, kind)
	})
}

func TestAllowedRepositoriesAnonymousPull(t *testing.T) {
	ctx := context.Background()
	st := policies{repos: map[string]string{"closed": `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:ListImages"}]}`}}
	az := NewAuthorizer(st, AuthorizerOptions{RegistryID: testAccount, Region: testRegion, AnonymousPull: true})
	for _, tc := range []struct {
		action string
		want   []string
	}{
		{"ecr:ListImages", []string{"a", "b"}},
		{"ecr:BatchGetImage", []string{"a", "b", "closed"}},
		{"ecr:PutImage", nil},
	} {
		got, err := az.AllowedRepositories(ctx, Principal{}, tc.action, []string{"a", "b", "closed"})
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("AllowedRepositories(anonymous, %s) = %q, %v; want %q", tc.action, got, err, tc.want)
		}
	}
}
