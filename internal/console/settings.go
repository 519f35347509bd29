package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
)

// ruleForm is one rule of the settings form, as typed.
type ruleForm struct {
	Frequency string
	Filters   string
}

// parsePolicyForm reads the scanning configuration form: scan_type, and for each rule slot
// ruleN_frequency (empty: no rule) and ruleN_filters (filters separated by commas, spaces or
// lines). It checks what the API's model checks, then policy.Validate; a refusal says which
// field and why.
func parsePolicyForm(form url.Values) (policy.Policy, []ruleForm, error) {
	p := policy.Policy{ScanType: form.Get("scan_type"), Rules: []policy.Rule{}}
	forms := make([]ruleForm, policy.MaxRules)
	for i := range policy.MaxRules {
		forms[i] = ruleForm{Frequency: form.Get(fmt.Sprintf("rule%d_frequency", i+1)), Filters: form.Get(fmt.Sprintf("rule%d_filters", i+1))}
	}
	if p.ScanType != policy.ScanTypeBasic && p.ScanType != policy.ScanTypeEnhanced {
		return p, forms, fmt.Errorf("%w: scan type must be BASIC or ENHANCED", errBadRequest)
	}
	for i, rf := range forms {
		if rf.Frequency == "" {
			if strings.TrimSpace(rf.Filters) != "" {
				return p, forms, fmt.Errorf("%w: rule %d: choose a scan frequency for its filters", errBadRequest, i+1)
			}
			continue
		}
		if !slices.Contains([]string{policy.FrequencyScanOnPush, policy.FrequencyContinuous, policy.FrequencyManual}, rf.Frequency) {
			return p, forms, fmt.Errorf("%w: rule %d: unknown scan frequency", errBadRequest, i+1)
		}
		values := strings.FieldsFunc(rf.Filters, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
		if len(values) < 1 || len(values) > policy.MaxFiltersPerRule {
			return p, forms, fmt.Errorf("%w: rule %d: give between 1 and %d repository filters", errBadRequest, i+1, policy.MaxFiltersPerRule)
		}
		rule := policy.Rule{Frequency: rf.Frequency, Filters: make([]policy.Filter, len(values))}
		for j, v := range values {
			if len(v) > policy.MaxFilterLen || !policy.FilterPattern.MatchString(v) {
				return p, forms, fmt.Errorf("%w: rule %d: filter %q must be a lowercase repository name pattern (letters, digits, . _ - / and the * wildcard)",
					errBadRequest, i+1, truncateRunes(v, 64))
			}
			rule.Filters[j] = policy.Filter{Value: v, Type: policy.FilterTypeWildcard}
		}
		p.Rules = append(p.Rules, rule)
	}
	var refused *policy.RuleError
	if err := policy.Validate(p); errors.As(err, &refused) {
		return p, forms, fmt.Errorf("%w: rule %d: %s scanning only supports the SCAN_ON_PUSH frequency, not %s", errBadRequest,
			refused.Index+1, refused.ScanType, refused.Frequency)
	} else if err != nil {
		return p, forms, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return p, forms, nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// formOf is the form that shows a stored configuration.
func formOf(p policy.Policy) []ruleForm {
	out := make([]ruleForm, policy.MaxRules)
	for i, r := range p.Rules {
		if i >= policy.MaxRules {
			break
		}
		vals := make([]string, len(r.Filters))
		for j, f := range r.Filters {
			vals[j] = f.Value
		}
		out[i] = ruleForm{Frequency: r.Frequency, Filters: strings.Join(vals, ", ")}
	}
	return out
}

type keyRow struct {
	ID, Name, Preset, Description, Created string
	Self                                   bool
}

func (h *Handler) settings(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	h.renderSettingsWith(w, r, s, http.StatusOK, settingsState{})
}

// settingsState is what a settings page shows besides the stored settings: a refused form
// shown again with why, or a key just made (its secret shown this once).
type settingsState struct {
	// Scanning is a refused scanning configuration form; Error says why (or why another form
	// at the top of the page was refused).
	Scanning []ruleForm
	Error    string
	Created  *store.AccessKey
	// RuleForm is a refused suppression rule form, RuleError why.
	RuleForm  *suppressionForm
	RuleError string
	// Rescan is a refused rescan configuration, RescanError why.
	Rescan      *policy.Rescan
	RescanError string
}

// renderSettings shows the settings page; forms, when set, is a refused configuration form
// shown again with msg; created is a key just made, its secret shown this once.
func (h *Handler) renderSettings(w http.ResponseWriter, r *http.Request, s *sessionCtx, status int, forms []ruleForm, msg string, created *store.AccessKey) {
	h.renderSettingsWith(w, r, s, status, settingsState{Scanning: forms, Error: msg, Created: created})
}

func (h *Handler) renderSettingsWith(w http.ResponseWriter, r *http.Request, s *sessionCtx, status int, st settingsState) {
	ctx := r.Context()
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "ecr:GetRegistryScanningConfiguration", "*"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	pol, err := h.cfg.Store.ScanningPolicy(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	scanType := pol.ScanType
	forms := st.Scanning
	if forms == nil {
		forms = formOf(pol)
	} else if st := r.PostForm.Get("scan_type"); st == policy.ScanTypeBasic || st == policy.ScanTypeEnhanced {
		scanType = st
	}
	data := map[string]any{"Title": "Settings", "Policy": pol, "ScanType": scanType, "Rules": forms, "Error": st.Error,
		"Notice": notices[r.URL.Query().Get("notice")], "Created": st.Created, "Presets": auth.PresetNames(),
		"Frequencies": []string{policy.FrequencyScanOnPush, policy.FrequencyContinuous, policy.FrequencyManual},
		"CanEdit":     h.cfg.Authz.Allowed(ctx, s.Principal, "ecr:PutRegistryScanningConfiguration", "*")}
	if h.cfg.Authz.Allowed(ctx, s.Principal, "iam:ListAccessKeys", "*") {
		keys, err := h.cfg.Keys.ListAccessKeys(ctx)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		rows := make([]keyRow, len(keys))
		for i, k := range keys {
			preset := k.Preset
			if preset == "" {
				preset = "custom policy"
			}
			rows[i] = keyRow{ID: k.ID, Name: k.Name, Preset: preset, Description: k.Description, Created: k.CreatedAt.UTC().Format("2006-01-02"),
				Self: k.ID == s.Principal.AccessKeyID}
		}
		data["Keys"] = rows
		data["CanManageKeys"] = h.cfg.Authz.Allowed(ctx, s.Principal, "iam:CreateAccessKey", "*")
	}
	if h.cfg.Webhooks != nil && h.cfg.Authz.Allowed(ctx, s.Principal, "events:ListTargetsByRule", "*") {
		hooks, err := h.webhooks(ctx)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		data["Webhooks"] = hooks
	}
	if err := h.rescanSettings(r, s, st, data); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if err := h.ruleSettings(r, s, st, data); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, status, "settings", "settings", data)
}

// rescanOptions are the rescan configuration form's choices, the model's values.
type rescanOptions struct {
	Durations, PullDurations, PullModes []string
}

// rescanSettings adds the rescan configuration to a key allowed inspector2:GetConfiguration
// (editable with inspector2:UpdateConfiguration).
func (h *Handler) rescanSettings(r *http.Request, s *sessionCtx, st settingsState, data map[string]any) error {
	ctx := r.Context()
	if h.cfg.Rescan == nil || !h.cfg.Authz.Allowed(ctx, s.Principal, "inspector2:GetConfiguration", "*") {
		return nil
	}
	cur, window, err := h.cfg.Rescan.Rescan(ctx)
	if err != nil {
		return err
	}
	shown := cur
	if st.Rescan != nil {
		shown = *st.Rescan
	}
	data["Rescan"] = map[string]any{"Current": cur, "Form": shown, "Error": st.RescanError, "PushWindow": windowLabel(window.Push),
		"PullWindow": windowLabel(window.Pull), "CanEdit": h.cfg.Authz.Allowed(ctx, s.Principal, "inspector2:UpdateConfiguration", "*"),
		"Options": rescanOptions{Durations: policy.RescanDurations(), PullDurations: policy.PullDateRescanDurations(), PullModes: policy.PullDateRescanModes()}}
	return nil
}

// windowLabel says a rescan window: "14 days", or "the image's lifetime" (0).
func windowLabel(d time.Duration) string {
	if d == 0 {
		return "the image's lifetime"
	}
	return age(d)
}

// ruleSettings adds the suppression rules to a key allowed inspector2:ListFilters, with the
// forms the key may use: a new rule (CreateFilter), the rule named by ?rule= (UpdateFilter),
// delete buttons (DeleteFilter).
func (h *Handler) ruleSettings(r *http.Request, s *sessionCtx, st settingsState, data map[string]any) error {
	ctx := r.Context()
	if h.cfg.Rules == nil || !h.cfg.Authz.Allowed(ctx, s.Principal, "inspector2:ListFilters", "*") {
		return nil
	}
	rows, byARN, err := h.ruleRows(r)
	if err != nil {
		return err
	}
	canCreate := h.cfg.Authz.Allowed(ctx, s.Principal, "inspector2:CreateFilter", "*")
	canUpdate := h.cfg.Authz.Allowed(ctx, s.Principal, "inspector2:UpdateFilter", "*")
	form := suppressionForm{Action: string(suppression.Suppress)}
	switch {
	case st.RuleForm != nil:
		form = *st.RuleForm
		if form.Fixed { // the stored criteria, described, beside the refused form
			if ru, ok := byARN[form.ARN]; ok {
				data["FixedCriteria"] = describeCriteria(ru.Criteria)
			}
		}
	case r.URL.Query().Get("rule") != "":
		ru, ok := byARN[r.URL.Query().Get("rule")]
		if !ok {
			return fmt.Errorf("%w: no such suppression rule", errNotFound)
		}
		form = formOfRule(ru)
		if form.Fixed {
			data["FixedCriteria"] = describeCriteria(ru.Criteria)
		}
	}
	editing := form.ARN != ""
	data["Suppressions"] = map[string]any{"Rows": rows, "Form": form, "Editing": editing, "Error": st.RuleError,
		"CanWrite":  (editing && canUpdate) || (!editing && canCreate),
		"CanUpdate": canUpdate, "CanDelete": h.cfg.Authz.Allowed(ctx, s.Principal, "inspector2:DeleteFilter", "*"),
		"Actions": []string{string(suppression.Suppress), string(suppression.None)}, "Severities": severities}
	return nil
}

func (h *Handler) putRescan(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if !h.permit(w, r, s, h.cfg.Rescan != nil, "inspector2:UpdateConfiguration") {
		return
	}
	rc := policy.Rescan{Duration: r.PostForm.Get("rescan_duration"), PullDateDuration: r.PostForm.Get("pull_date_rescan_duration"),
		PullDateMode: r.PostForm.Get("pull_date_rescan_mode")}
	if member, allowed := policy.ValidateRescan(rc); member != "" {
		h.renderSettingsWith(w, r, s, http.StatusBadRequest, settingsState{Rescan: &rc,
			RescanError: fmt.Sprintf("%s must be one of %s", member, strings.Join(allowed, ", "))})
		return
	}
	if err := h.cfg.Rescan.SetRescan(ctx, rc); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.cfg.Logger.InfoContext(ctx, "console: rescan configuration saved", "rescan_duration", rc.Duration, "by", s.Principal.AccessKeyID)
	http.Redirect(w, r, Prefix+"settings?notice=rescan-saved#rescan", http.StatusSeeOther)
}

func (h *Handler) putScanning(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "ecr:PutRegistryScanningConfiguration", "*"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	p, forms, err := parsePolicyForm(r.PostForm)
	if err != nil {
		h.renderSettings(w, r, s, http.StatusBadRequest, forms, strings.TrimPrefix(err.Error(), errBadRequest.Error()+": "), nil)
		return
	}
	if err := h.cfg.Store.PutScanningPolicy(ctx, p); err != nil {
		h.fail(w, r, s, err)
		return
	}
	// As the API does: images a new rule covers are brought into coverage; a failure here
	// does not undo the saved configuration.
	if err := h.cfg.Scans.PolicyChanged(ctx); err != nil {
		h.cfg.Logger.WarnContext(ctx, "bring images into scan coverage", "err", err)
	}
	http.Redirect(w, r, Prefix+"settings?notice=saved", http.StatusSeeOther)
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "iam:CreateAccessKey", "*"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	name, preset, desc := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("preset"), strings.TrimSpace(r.PostForm.Get("description"))
	if !auth.ValidKeyName(name) {
		h.renderSettings(w, r, s, http.StatusBadRequest, nil, "A key's name is 1 to 64 letters, digits and +=,.@_-", nil)
		return
	}
	if _, ok := auth.PresetDocument(preset); !ok {
		h.renderSettings(w, r, s, http.StatusBadRequest, nil, "Choose one of the policy presets.", nil)
		return
	}
	if len(desc) > 256 {
		h.renderSettings(w, r, s, http.StatusBadRequest, nil, "The description is at most 256 characters.", nil)
		return
	}
	existing, err := h.cfg.Keys.ListAccessKeys(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	for _, k := range existing {
		if k.Name == name {
			h.renderSettings(w, r, s, http.StatusConflict, nil, "Another access key has that name.", nil)
			return
		}
	}
	k, err := auth.NewAccessKey(desc)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	k.Name, k.Preset = name, preset
	if err := h.cfg.Keys.CreateAccessKey(ctx, k); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.cfg.Logger.InfoContext(ctx, "console: access key created", "access_key_id", k.ID, "name", k.Name, "by", s.Principal.AccessKeyID)
	h.renderSettings(w, r, s, http.StatusOK, nil, "", &k)
}

func (h *Handler) deleteKey(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "iam:DeleteAccessKey", "*"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	id := r.PostForm.Get("id")
	if id == s.Principal.AccessKeyID {
		h.renderSettings(w, r, s, http.StatusBadRequest, nil, "You are signed in with this key: sign in with another to delete it.", nil)
		return
	}
	if err := h.cfg.Keys.DeleteAccessKey(ctx, id); errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, s, errNotFound)
		return
	} else if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.cfg.Logger.InfoContext(ctx, "console: access key deleted", "access_key_id", id, "by", s.Principal.AccessKeyID)
	http.Redirect(w, r, Prefix+"settings?notice=key-deleted", http.StatusSeeOther)
}

type webhookRow struct {
	events.WebhookState
	Pending int64
}

// webhooks are the event webhooks with what each has pending (from the store, for every node)
// and how its deliveries go (this node's).
func (h *Handler) webhooks(ctx context.Context) ([]webhookRow, error) {
	positions, end, err := h.cfg.Store.WebhookCursors(ctx)
	if err != nil {
		return nil, err
	}
	states := h.cfg.Webhooks()
	out := make([]webhookRow, len(states))
	for i, st := range states {
		out[i] = webhookRow{WebhookState: st}
		if pos, ok := positions[st.Name]; ok {
			out[i].Pending = max(0, end-pos)
		}
	}
	return out, nil
}
