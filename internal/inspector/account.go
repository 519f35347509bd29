package inspector

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

// Scanning is what the account and configuration operations need (internal/scanning):
// Inspector's ECR scanning is the registry's ENHANCED scanning, its rescan configuration the
// window of continuous scanning.
type Scanning interface {
	Rescan(ctx context.Context) (policy.Rescan, policy.Window, error)
	SetRescan(ctx context.Context, r policy.Rescan) error
	Enhanced(ctx context.Context) (bool, error)
	SetEnhanced(ctx context.Context, on bool) error
}

// Resource scan types, as Inspector names them; Lading scans ECR only.
var resourceScanTypes = []string{"EC2", "ECR", "LAMBDA", "LAMBDA_CODE", "CODE_REPOSITORY"}

func (h *Handler) getConfiguration(ctx context.Context, c *call, body []byte) (any, error) {
	if h.cfg.Scanning == nil {
		return nil, notImplemented(c.op)
	}
	var in struct {
		AccountID *string `json:"accountId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.AccountID != nil && *in.AccountID != h.cfg.RegistryID {
		return nil, &apiError{Type: "ResourceNotFoundException", Status: 404, Message: "No account " + *in.AccountID + " in this registry"}
	}
	r, _, err := h.cfg.Scanning.Rescan(ctx)
	if err != nil {
		return nil, err
	}
	type state struct {
		RescanDuration         string `json:"rescanDuration"`
		Status                 string `json:"status"`
		UpdatedAt              *epoch `json:"updatedAt,omitempty"`
		PullDateRescanDuration string `json:"pullDateRescanDuration,omitempty"`
		PullDateRescanMode     string `json:"pullDateRescanMode,omitempty"`
	}
	st := state{RescanDuration: r.Duration, Status: "SUCCESS", PullDateRescanDuration: r.PullDateDuration, PullDateRescanMode: r.PullDateMode}
	if !r.UpdatedAt.IsZero() {
		st.UpdatedAt = epochOf(r.UpdatedAt)
	}
	return map[string]any{"ecrConfiguration": map[string]any{"rescanDurationState": st}}, nil
}

func (h *Handler) updateConfiguration(ctx context.Context, c *call, body []byte) (any, error) {
	if h.cfg.Scanning == nil {
		return nil, notImplemented(c.op)
	}
	var in struct {
		ECRConfiguration *struct {
			RescanDuration         *string `json:"rescanDuration"`
			PullDateRescanDuration *string `json:"pullDateRescanDuration"`
			PullDateRescanMode     *string `json:"pullDateRescanMode"`
		} `json:"ecrConfiguration"`
		EC2Configuration map[string]any `json:"ec2Configuration"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.EC2Configuration != nil {
		return nil, &findings.ValidationError{Reason: findings.ReasonOther, Fields: []findings.FieldError{{Name: "ec2Configuration",
			Message: "Lading scans no EC2 instances"}}}
	}
	e := in.ECRConfiguration
	if e == nil {
		return map[string]any{}, nil
	}
	if e.RescanDuration == nil {
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "ecrConfiguration.rescanDuration", "is required")
	}
	r := policy.Rescan{Duration: *e.RescanDuration}
	if e.PullDateRescanDuration != nil {
		r.PullDateDuration = *e.PullDateRescanDuration
	}
	if e.PullDateRescanMode != nil {
		r.PullDateMode = *e.PullDateRescanMode
	}
	if member, allowed := policy.ValidateRescan(r); member != "" {
		var v string
		switch member {
		case "rescanDuration":
			v = r.Duration
		case "pullDateRescanDuration":
			v = r.PullDateDuration
		default:
			v = r.PullDateMode
		}
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "ecrConfiguration."+member, fmt.Sprintf("Value '%s' is not one of %v", v, allowed))
	}
	if err := h.cfg.Scanning.SetRescan(ctx, r); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

type (
	resourceStatus struct {
		EC2            string `json:"ec2"`
		ECR            string `json:"ecr"`
		Lambda         string `json:"lambda"`
		LambdaCode     string `json:"lambdaCode"`
		CodeRepository string `json:"codeRepository"`
	}
	accountWire struct {
		AccountID      string         `json:"accountId"`
		Status         string         `json:"status"`
		ResourceStatus resourceStatus `json:"resourceStatus"`
	}
	failedAccount struct {
		AccountID    string `json:"accountId"`
		ErrorCode    string `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	}
)

// accountIDs reads the accountIds of a request (0..100 of them): those other than the
// registry's fail, as accounts Lading does not manage.
func (h *Handler) accountIDs(ids []string) (ours bool, failed []failedAccount, err error) {
	if len(ids) > 100 {
		return false, nil, findings.Invalid(findings.ReasonFieldValidationFailed, "accountIds", "must have at most 100 items")
	}
	failed = []failedAccount{}
	if len(ids) == 0 {
		return true, failed, nil
	}
	for _, id := range ids {
		if id == h.cfg.RegistryID {
			ours = true
			continue
		}
		failed = append(failed, failedAccount{AccountID: id, ErrorCode: "ACCESS_DENIED", ErrorMessage: "Lading manages only its registry's account " + h.cfg.RegistryID})
	}
	return ours, failed, nil
}

func status(on bool) string {
	if on {
		return "ENABLED"
	}
	return "DISABLED"
}

func (h *Handler) accountStatus(on bool) accountWire {
	return accountWire{AccountID: h.cfg.RegistryID, Status: status(on), ResourceStatus: resourceStatus{EC2: "DISABLED", ECR: status(on),
		Lambda: "DISABLED", LambdaCode: "DISABLED", CodeRepository: "DISABLED"}}
}

func (h *Handler) batchGetAccountStatus(ctx context.Context, c *call, body []byte) (any, error) {
	if h.cfg.Scanning == nil {
		return nil, notImplemented(c.op)
	}
	var in struct {
		AccountIDs []string `json:"accountIds"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	ours, failed, err := h.accountIDs(in.AccountIDs)
	if err != nil {
		return nil, err
	}
	type state struct {
		Status string `json:"status"`
	}
	type resourceState struct {
		EC2            state `json:"ec2"`
		ECR            state `json:"ecr"`
		Lambda         state `json:"lambda"`
		LambdaCode     state `json:"lambdaCode"`
		CodeRepository state `json:"codeRepository"`
	}
	type accountState struct {
		AccountID     string        `json:"accountId"`
		State         state         `json:"state"`
		ResourceState resourceState `json:"resourceState"`
	}
	out := struct {
		Accounts       []accountState  `json:"accounts"`
		FailedAccounts []failedAccount `json:"failedAccounts"`
	}{Accounts: []accountState{}, FailedAccounts: failed}
	if ours {
		on, err := h.cfg.Scanning.Enhanced(ctx)
		if err != nil {
			return nil, err
		}
		off := state{Status: "DISABLED"}
		out.Accounts = append(out.Accounts, accountState{AccountID: h.cfg.RegistryID, State: state{Status: status(on)},
			ResourceState: resourceState{EC2: off, ECR: state{Status: status(on)}, Lambda: off, LambdaCode: off, CodeRepository: off}})
	}
	return out, nil
}

// enable and disable switch the registry's ENHANCED scanning (scanning.SetEnhanced).
func (h *Handler) enable(ctx context.Context, c *call, body []byte) (any, error) {
	return h.setEnabled(ctx, c, body, true)
}

func (h *Handler) disable(ctx context.Context, c *call, body []byte) (any, error) {
	return h.setEnabled(ctx, c, body, false)
}

func (h *Handler) setEnabled(ctx context.Context, c *call, body []byte, on bool) (any, error) {
	if h.cfg.Scanning == nil {
		return nil, notImplemented(c.op)
	}
	var in struct {
		AccountIDs    []string `json:"accountIds"`
		ResourceTypes []string `json:"resourceTypes"`
		ClientToken   *string  `json:"clientToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if on && (len(in.ResourceTypes) < 1 || len(in.ResourceTypes) > 5) {
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "resourceTypes", "must have between 1 and 5 items")
	}
	if len(in.ResourceTypes) > 5 {
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "resourceTypes", "must have at most 5 items")
	}
	ecr := len(in.ResourceTypes) == 0 // Disable without types disables every type
	for i, t := range in.ResourceTypes {
		if !slices.Contains(resourceScanTypes, t) {
			return nil, findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("resourceTypes[%d]", i), fmt.Sprintf("Value '%s' is not one of %v", t, resourceScanTypes))
		}
		if t == "ECR" {
			ecr = true
		} else if on {
			// Nothing to enable: refused rather than answered ENABLED for scans Lading never runs.
			return nil, findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("resourceTypes[%d]", i), "Lading scans ECR resources only, not "+t)
		}
	}
	ours, failed, err := h.accountIDs(in.AccountIDs)
	if err != nil {
		return nil, err
	}
	out := struct {
		Accounts       []accountWire   `json:"accounts"`
		FailedAccounts []failedAccount `json:"failedAccounts"`
	}{Accounts: []accountWire{}, FailedAccounts: failed}
	if !ours {
		return out, nil
	}
	if ecr {
		start := time.Now()
		if err := h.cfg.Scanning.SetEnhanced(ctx, on); err != nil {
			return nil, err
		}
		h.cfg.Logger.InfoContext(ctx, "Inspector2 ECR scanning switched", "enabled", on, "elapsed", time.Since(start).String())
	}
	now, err := h.cfg.Scanning.Enhanced(ctx)
	if err != nil {
		return nil, err
	}
	out.Accounts = append(out.Accounts, h.accountStatus(now))
	return out, nil
}
