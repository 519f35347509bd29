package ecr

import (
	"context"
	"errors"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

type filterWire struct {
	Filter     *string `json:"filter"`
	FilterType *string `json:"filterType"`
}

type ruleWire struct {
	ScanFrequency     *string      `json:"scanFrequency"`
	RepositoryFilters []filterWire `json:"repositoryFilters"`
}

type filterOut struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

type ruleOut struct {
	ScanFrequency     string      `json:"scanFrequency"`
	RepositoryFilters []filterOut `json:"repositoryFilters"`
}

type policyOut struct {
	ScanType string    `json:"scanType"`
	Rules    []ruleOut `json:"rules"`
}

func filtersOut(fs []policy.Filter) []filterOut {
	out := make([]filterOut, len(fs))
	for i, f := range fs {
		out[i] = filterOut{Filter: f.Value, FilterType: f.Type}
	}
	return out
}

func toPolicyOut(p policy.Policy) policyOut {
	out := policyOut{ScanType: p.ScanType, Rules: make([]ruleOut, len(p.Rules))}
	for i, r := range p.Rules {
		out.Rules[i] = ruleOut{ScanFrequency: r.Frequency, RepositoryFilters: filtersOut(r.Filters)}
	}
	return out
}

func (h *Handler) putRegistryScanningConfiguration(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		ScanType *string    `json:"scanType"`
		Rules    []ruleWire `json:"rules"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{coral: true}
	v.enum("scanType", in.ScanType, false, policy.ScanTypeBasic, policy.ScanTypeEnhanced)
	v.list("rules", len(in.Rules), in.Rules != nil, false, 0, policy.MaxRules)
	for i, r := range in.Rules {
		path := "rules." + itoa(i+1) + ".member"
		v.enum(path+".scanFrequency", r.ScanFrequency, true, policy.FrequencyScanOnPush, policy.FrequencyContinuous, policy.FrequencyManual)
		v.list(path+".repositoryFilters", len(r.RepositoryFilters), r.RepositoryFilters != nil, true, 1, policy.MaxFiltersPerRule)
		for j, f := range r.RepositoryFilters {
			fpath := path + ".repositoryFilters." + itoa(j+1) + ".member"
			v.str(fpath+".filter", f.Filter, true, 1, policy.MaxFilterLen, policy.FilterPattern)
			v.enum(fpath+".filterType", f.FilterType, true, policy.FilterTypeWildcard)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	p := policy.Policy{ScanType: policy.ScanTypeBasic, Rules: []policy.Rule{}}
	if in.ScanType != nil {
		p.ScanType = *in.ScanType
	}
	for _, r := range in.Rules {
		rule := policy.Rule{Frequency: *r.ScanFrequency, Filters: make([]policy.Filter, len(r.RepositoryFilters))}
		for j, f := range r.RepositoryFilters {
			rule.Filters[j] = policy.Filter{Value: *f.Filter, Type: *f.FilterType}
		}
		p.Rules = append(p.Rules, rule)
	}
	var refused *policy.RuleError
	if err := policy.Validate(p); errors.As(err, &refused) {
		return nil, newError(errInvalidParameter, "Invalid parameter at 'rules.%d.member.scanFrequency' failed to satisfy constraint: '%s scan type only supports the SCAN_ON_PUSH scan frequency, not %s'",
			refused.Index+1, refused.ScanType, refused.Frequency)
	} else if err != nil {
		return nil, err
	}
	if err := h.meta.PutScanningPolicy(ctx, p); err != nil {
		return nil, err
	}
	if h.cfg.Scans != nil {
		if err := h.cfg.Scans.PolicyChanged(ctx); err != nil {
			h.cfg.Logger.Warn("bring images into scan coverage", "err", err)
		}
	}
	return map[string]any{"registryScanningConfiguration": toPolicyOut(p)}, nil
}

func (h *Handler) getRegistryScanningConfiguration(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct{}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	p, err := h.meta.ScanningPolicy(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registryId": h.cfg.RegistryID, "scanningConfiguration": toPolicyOut(p)}, nil
}

func (h *Handler) batchGetRepositoryScanningConfiguration(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RepositoryNames []string `json:"repositoryNames"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{coral: true}
	v.list("repositoryNames", len(in.RepositoryNames), in.RepositoryNames != nil, true, 1, 25)
	for i := range in.RepositoryNames {
		v.repositoryName("repositoryNames."+itoa(i+1)+".member", &in.RepositoryNames[i], true)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	p, err := h.meta.ScanningPolicy(ctx)
	if err != nil {
		return nil, err
	}
	type configOut struct {
		RepositoryArn      string      `json:"repositoryArn"`
		RepositoryName     string      `json:"repositoryName"`
		ScanOnPush         bool        `json:"scanOnPush"`
		ScanFrequency      string      `json:"scanFrequency"`
		AppliedScanFilters []filterOut `json:"appliedScanFilters"`
	}
	type failureOut struct {
		RepositoryName string `json:"repositoryName"`
		FailureCode    string `json:"failureCode"`
		FailureReason  string `json:"failureReason"`
	}
	resp := struct {
		ScanningConfigurations []configOut  `json:"scanningConfigurations"`
		Failures               []failureOut `json:"failures"`
	}{ScanningConfigurations: []configOut{}, Failures: []failureOut{}}
	seen := map[string]bool{}
	for _, name := range in.RepositoryNames {
		if seen[name] {
			continue
		}
		seen[name] = true
		r, err := h.meta.GetRepository(ctx, name)
		if err != nil {
			if errors.Is(err, store.ErrRepositoryNotFound) {
				resp.Failures = append(resp.Failures, failureOut{RepositoryName: name, FailureCode: "REPOSITORY_NOT_FOUND",
					FailureReason: "The repository with name '" + name + "' does not exist in the registry with id '" + h.cfg.RegistryID + "'"})
				continue
			}
			return nil, err
		}
		d := policy.Evaluate(p, name, r.ScanOnPush)
		resp.ScanningConfigurations = append(resp.ScanningConfigurations, configOut{
			RepositoryArn: h.arn(name), RepositoryName: name, ScanOnPush: d.ScanOnPush,
			ScanFrequency: d.Frequency, AppliedScanFilters: filtersOut(d.AppliedFilters),
		})
	}
	return resp, nil
}
