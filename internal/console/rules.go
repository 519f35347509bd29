package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/suppression"
)

// suppressionForm is the suppression rule form, as typed: the rule's name, action, reason and
// description, and its criteria as the few fields a console user sets (lists separated by
// commas, spaces or lines). Criteria the form cannot show (set through the API with other
// fields) are kept as they are on an update: Fixed is then set.
type suppressionForm struct {
	ARN, Name, Action, Reason, Description string
	VulnerabilityIDs, Repositories, Tags   string
	Digests, Packages, FilePath            string
	Severities                             []string
	// Fixed: the rule's criteria are not the form's to show; an update keeps them.
	Fixed bool
}

// splitList splits a form's list field.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func equalsAll(values []string) []findings.StringFilter {
	out := make([]findings.StringFilter, len(values))
	for i, v := range values {
		out[i] = findings.StringFilter{Comparison: findings.Equals, Value: v}
	}
	return out
}

// parseSuppressionForm reads the rule form: the form's fields as typed (to show again after a
// refusal) and the suppression.Input they stand for. It only translates: the rule's validation
// (name, lengths, criteria) is suppression.Service's, as for CreateFilter and UpdateFilter.
func parseSuppressionForm(form url.Values) (suppressionForm, suppression.Input, error) {
	rf := suppressionForm{ARN: form.Get("arn"), Name: strings.TrimSpace(form.Get("name")), Action: form.Get("action"),
		Reason: strings.TrimSpace(form.Get("reason")), Description: strings.TrimSpace(form.Get("description")),
		VulnerabilityIDs: form.Get("vulnerability_ids"), Repositories: form.Get("repositories"), Tags: form.Get("tags"),
		Digests: form.Get("digests"), Packages: form.Get("packages"), FilePath: strings.TrimSpace(form.Get("file_path")),
		Fixed: form.Get("keep_criteria") == "1"}
	for _, s := range form["severity"] {
		if !slices.Contains(severities, s) {
			return rf, suppression.Input{}, fmt.Errorf("%w: unknown severity", errBadRequest)
		}
		if !slices.Contains(rf.Severities, s) {
			rf.Severities = append(rf.Severities, s)
		}
	}
	action := suppression.Action(rf.Action)
	in := suppression.Input{Name: &rf.Name, Action: &action}
	if rf.Reason != "" {
		in.Reason = &rf.Reason
	}
	if rf.Description != "" {
		in.Description = &rf.Description
	}
	if rf.Fixed {
		return rf, in, nil
	}
	c := findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{}}
	set := func(f findings.Field, list []findings.StringFilter) {
		if len(list) > 0 {
			c.Strings[f] = list
		}
	}
	set(findings.VulnerabilityID, equalsAll(splitList(rf.VulnerabilityIDs)))
	set(findings.ECRImageTags, equalsAll(splitList(rf.Tags)))
	set(findings.ECRImageHash, equalsAll(splitList(rf.Digests)))
	set(findings.Severity, equalsAll(rf.Severities))
	var repos []findings.StringFilter
	for _, r := range splitList(rf.Repositories) {
		// A trailing * is a prefix, as the repository filters of scanning rules read.
		if p, ok := strings.CutSuffix(r, "*"); ok {
			repos = append(repos, findings.StringFilter{Comparison: findings.Prefix, Value: p})
		} else {
			repos = append(repos, findings.StringFilter{Comparison: findings.Equals, Value: r})
		}
	}
	set(findings.ECRImageRepositoryName, repos)
	var path *findings.StringFilter
	if rf.FilePath != "" {
		path = &findings.StringFilter{Comparison: findings.Prefix, Value: rf.FilePath}
	}
	for _, name := range splitList(rf.Packages) {
		c.Packages = append(c.Packages, findings.PackageFilter{Name: &findings.StringFilter{Comparison: findings.Equals, Value: name}, FilePath: path})
	}
	if len(c.Packages) == 0 && path != nil {
		c.Packages = []findings.PackageFilter{{FilePath: path}}
	}
	in.Criteria = &c
	return rf, in, nil
}

// formOfRule is the form showing a stored rule; its criteria are Fixed when they use what
// the form has no field for.
func formOfRule(r suppression.Rule) suppressionForm {
	rf := suppressionForm{ARN: r.ARN, Name: r.Name, Action: string(r.Action), Reason: r.Reason, Description: r.Description}
	c := r.Criteria
	if len(c.Dates) > 0 || len(c.Numbers) > 0 || len(c.Maps) > 0 || len(c.PortRanges) > 0 {
		rf.Fixed = true
		return rf
	}
	values := func(list []findings.StringFilter, cmp findings.Comparison) (string, bool) {
		out := make([]string, len(list))
		for i, sf := range list {
			if sf.Comparison != cmp || strings.ContainsAny(sf.Value, ", \n\r\t") {
				return "", false
			}
			out[i] = sf.Value
		}
		return strings.Join(out, ", "), true
	}
	for f, list := range c.Strings {
		var ok bool
		switch f {
		case findings.VulnerabilityID:
			rf.VulnerabilityIDs, ok = values(list, findings.Equals)
		case findings.ECRImageTags:
			rf.Tags, ok = values(list, findings.Equals)
		case findings.ECRImageHash:
			rf.Digests, ok = values(list, findings.Equals)
		case findings.Severity:
			var s string
			if s, ok = values(list, findings.Equals); ok {
				rf.Severities = splitList(s)
				ok = !slices.ContainsFunc(rf.Severities, func(v string) bool { return !slices.Contains(severities, v) })
			}
		case findings.ECRImageRepositoryName:
			var names []string
			ok = true
			for _, sf := range list {
				switch {
				case strings.ContainsAny(sf.Value, ", \n\r\t") || strings.HasSuffix(sf.Value, "*"):
					ok = false
				case sf.Comparison == findings.Equals:
					names = append(names, sf.Value)
				case sf.Comparison == findings.Prefix:
					names = append(names, sf.Value+"*")
				default:
					ok = false
				}
			}
			rf.Repositories = strings.Join(names, ", ")
		}
		if !ok {
			return suppressionForm{ARN: r.ARN, Name: r.Name, Action: string(r.Action), Reason: r.Reason, Description: r.Description, Fixed: true}
		}
	}
	// Packages: names (EQUALS), each with the same file path prefix, or the prefix alone.
	var names []string
	for i, p := range c.Packages {
		path := ""
		if p.FilePath != nil {
			path = p.FilePath.Value
		}
		if p.Version != nil || p.Release != nil || p.Architecture != nil || p.SourceLayerHash != nil || p.SourceLambdaLayerArn != nil || p.Epoch != nil || p.Reachability != nil ||
			(p.FilePath != nil && p.FilePath.Comparison != findings.Prefix) || (i > 0 && path != rf.FilePath) ||
			(p.Name == nil && len(c.Packages) > 1) || (p.Name != nil && (p.Name.Comparison != findings.Equals || strings.ContainsAny(p.Name.Value, ", \n\r\t"))) ||
			(p.Name == nil && p.FilePath == nil) {
			return suppressionForm{ARN: r.ARN, Name: r.Name, Action: string(r.Action), Reason: r.Reason, Description: r.Description, Fixed: true}
		}
		rf.FilePath = path
		if p.Name != nil {
			names = append(names, p.Name.Value)
		}
	}
	rf.Packages = strings.Join(names, ", ")
	return rf
}

// describeCriteria says a rule's criteria as a line of text: each criterion's filters, OR'd
// within it, criteria AND'd.
func describeCriteria(c findings.Criteria) string {
	var parts []string
	str := func(f string, sf findings.StringFilter) string {
		switch sf.Comparison {
		case findings.Prefix:
			return f + " starts with " + sf.Value
		case findings.NotEquals:
			return f + " ≠ " + sf.Value
		}
		return f + " = " + sf.Value
	}
	either := func(alts []string) string {
		if len(alts) == 1 {
			return alts[0]
		}
		return "(" + strings.Join(alts, " or ") + ")"
	}
	for _, f := range sortedFields(c.Strings) {
		var alts []string
		for _, sf := range c.Strings[f] {
			alts = append(alts, str(string(f), sf))
		}
		parts = append(parts, either(alts))
	}
	day := func(t *time.Time) string {
		if t == nil {
			return "…"
		}
		return t.UTC().Format("2006-01-02 15:04")
	}
	for _, f := range sortedFields(c.Dates) {
		var alts []string
		for _, df := range c.Dates[f] {
			alts = append(alts, fmt.Sprintf("%s in [%s, %s]", f, day(df.Start), day(df.End)))
		}
		parts = append(parts, either(alts))
	}
	num := func(p *float64) string {
		if p == nil {
			return "…"
		}
		return fmt.Sprint(*p)
	}
	for _, f := range sortedFields(c.Numbers) {
		var alts []string
		for _, nf := range c.Numbers[f] {
			alts = append(alts, fmt.Sprintf("%s in [%s, %s]", f, num(nf.Lower), num(nf.Upper)))
		}
		parts = append(parts, either(alts))
	}
	for _, f := range sortedFields(c.Maps) {
		var alts []string
		for _, mf := range c.Maps[f] {
			alts = append(alts, fmt.Sprintf("%s[%s] = %s", f, mf.Key, mf.Value))
		}
		parts = append(parts, either(alts))
	}
	for _, f := range sortedFields(c.PortRanges) {
		parts = append(parts, string(f)+" (port ranges)")
	}
	var pkgs []string
	for _, p := range c.Packages {
		var fs []string
		for _, m := range []struct {
			name string
			f    *findings.StringFilter
		}{{"name", p.Name}, {"version", p.Version}, {"release", p.Release}, {"architecture", p.Architecture},
			{"sourceLayerHash", p.SourceLayerHash}, {"sourceLambdaLayerArn", p.SourceLambdaLayerArn}, {"filePath", p.FilePath},
			{"reachability", p.Reachability}} {
			if m.f != nil {
				fs = append(fs, str("package "+m.name, *m.f))
			}
		}
		if p.Epoch != nil {
			fs = append(fs, fmt.Sprintf("package epoch in [%s, %s]", num(p.Epoch.Lower), num(p.Epoch.Upper)))
		}
		pkgs = append(pkgs, strings.Join(fs, " and "))
	}
	if len(pkgs) > 0 {
		parts = append(parts, either(pkgs))
	}
	if len(parts) == 0 {
		return "every finding"
	}
	return strings.Join(parts, " and ")
}

func sortedFields[V any](m map[findings.Field]V) []findings.Field {
	out := make([]findings.Field, 0, len(m))
	for f := range m {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

type ruleRow struct {
	ARN, Name, Action, Reason, Description, Criteria, EditURL string
	UpdatedAt                                                 time.Time
}

// maxRulesShown bounds the rules the settings page lists (ListFilters pages of 100).
const maxRulesShown = 1000

// ruleRows lists the suppression rules, oldest first.
func (h *Handler) ruleRows(r *http.Request) (rows []ruleRow, byARN map[string]suppression.Rule, err error) {
	byARN = map[string]suppression.Rule{}
	in := suppression.ListInput{}
	for len(rows) < maxRulesShown {
		page, err := h.cfg.Rules.List(r.Context(), in)
		if err != nil {
			return nil, nil, err
		}
		for _, ru := range page.Rules {
			byARN[ru.ARN] = ru
			rows = append(rows, ruleRow{ARN: ru.ARN, Name: ru.Name, Action: string(ru.Action), Reason: ru.Reason, Description: ru.Description,
				Criteria: describeCriteria(ru.Criteria), UpdatedAt: ru.UpdatedAt,
				EditURL: Prefix + "settings?" + url.Values{"rule": {ru.ARN}}.Encode() + "#rule-form"})
		}
		if page.NextToken == "" {
			break
		}
		in.NextToken = &page.NextToken
	}
	return rows, byARN, nil
}

// ruleRefusal is the message a refused rule form shows, and its status; ok is false for an
// error that is not the form's.
func ruleRefusal(err error) (status int, msg string, ok bool) {
	var invalid *findings.ValidationError
	switch {
	case errors.As(err, &invalid):
		return http.StatusBadRequest, invalid.Error(), true
	case errors.Is(err, suppression.ErrNameTaken):
		return http.StatusConflict, "Another suppression rule has that name.", true
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, strings.TrimPrefix(err.Error(), errBadRequest.Error()+": "), true
	}
	return 0, "", false
}

func (h *Handler) createRule(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	h.writeRule(w, r, s, "inspector2:CreateFilter", func(rf suppressionForm, in suppression.Input) error {
		_, err := h.cfg.Rules.Create(r.Context(), in)
		return err
	}, "rule-created")
}

func (h *Handler) updateRule(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	h.writeRule(w, r, s, "inspector2:UpdateFilter", func(rf suppressionForm, in suppression.Input) error {
		_, err := h.cfg.Rules.Update(r.Context(), rf.ARN, in)
		return err
	}, "rule-saved")
}

// writeRule checks the key may do action, reads the form and writes the rule with write; a
// refusal shows the form again with why.
func (h *Handler) writeRule(w http.ResponseWriter, r *http.Request, s *sessionCtx, action string, write func(suppressionForm, suppression.Input) error, notice string) {
	if !h.permit(w, r, s, h.cfg.Rules != nil, action) {
		return
	}
	rf, in, err := parseSuppressionForm(r.PostForm)
	if err == nil {
		err = write(rf, in)
	}
	if errors.Is(err, suppression.ErrNotFound) {
		h.fail(w, r, s, errNotFound)
		return
	}
	if status, msg, ok := ruleRefusal(err); ok {
		h.renderSettingsWith(w, r, s, status, settingsState{RuleForm: &rf, RuleError: msg})
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.cfg.Logger.InfoContext(r.Context(), "console: suppression rule written", "name", rf.Name, "arn", rf.ARN, "by", s.Principal.AccessKeyID)
	http.Redirect(w, r, Prefix+"settings?notice="+notice+"#rules", http.StatusSeeOther)
}

func (h *Handler) deleteRule(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if !h.permit(w, r, s, h.cfg.Rules != nil, "inspector2:DeleteFilter") {
		return
	}
	arn := r.PostForm.Get("arn")
	_, err := h.cfg.Rules.Delete(ctx, arn)
	var invalid *findings.ValidationError
	if errors.Is(err, suppression.ErrNotFound) || errors.As(err, &invalid) {
		h.fail(w, r, s, errNotFound)
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.cfg.Logger.InfoContext(ctx, "console: suppression rule deleted", "arn", arn, "by", s.Principal.AccessKeyID)
	http.Redirect(w, r, Prefix+"settings?notice=rule-deleted#rules", http.StatusSeeOther)
}
