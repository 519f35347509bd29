package reports

import (
	"fmt"
	"slices"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/store"
)

// ResourceFilter is a ResourceStringFilter (EQUALS or NOT_EQUALS).
type ResourceFilter struct {
	Comparison string
	Value      string
}

// ResourceMapFilter is a ResourceMapFilter (EQUALS).
type ResourceMapFilter struct {
	Comparison string
	Key        string
	Value      string
}

// ResourceCriteria is an SBOM export's ResourceFilterCriteria. Within a member an image
// matches when it equals one of the EQUALS filters (if any) and none of the NOT_EQUALS ones;
// members are AND'd. Lambda and EC2 members select no container image.
type ResourceCriteria struct {
	AccountID          []ResourceFilter
	ResourceID         []ResourceFilter
	ResourceType       []ResourceFilter
	ECRRepositoryName  []ResourceFilter
	ECRImageTags       []ResourceFilter
	LambdaFunctionName []ResourceFilter
	EC2InstanceTags    []ResourceMapFilter
	LambdaFunctionTags []ResourceMapFilter
}

// Model limits: 1 to 10 filters a member, values of 1 to 1024 characters.
const (
	maxResourceFilters = 10
	maxResourceValue   = 1024
)

func (c ResourceCriteria) strings() []struct {
	name string
	list []ResourceFilter
} {
	return []struct {
		name string
		list []ResourceFilter
	}{{"accountId", c.AccountID}, {"resourceId", c.ResourceID}, {"resourceType", c.ResourceType},
		{"ecrRepositoryName", c.ECRRepositoryName}, {"ecrImageTags", c.ECRImageTags}, {"lambdaFunctionName", c.LambdaFunctionName}}
}

// Validate checks the criteria against the model (prefix names them in errors). A member set
// to an empty list is refused, as the model's 1..10 says.
func (c ResourceCriteria) Validate(prefix string) error {
	for _, m := range c.strings() {
		if m.list == nil {
			continue
		}
		p := prefix + "." + m.name
		if len(m.list) < 1 || len(m.list) > maxResourceFilters {
			return findings.Invalid(findings.ReasonFieldValidationFailed, p, fmt.Sprintf("must have between 1 and %d filters", maxResourceFilters))
		}
		for i, f := range m.list {
			if f.Comparison != "EQUALS" && f.Comparison != "NOT_EQUALS" {
				return findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("%s[%d].comparison", p, i), "must be one of EQUALS, NOT_EQUALS")
			}
			if len(f.Value) < 1 || len(f.Value) > maxResourceValue {
				return findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("%s[%d].value", p, i), fmt.Sprintf("length must be between 1 and %d", maxResourceValue))
			}
		}
	}
	for _, m := range []struct {
		name string
		list []ResourceMapFilter
	}{{"ec2InstanceTags", c.EC2InstanceTags}, {"lambdaFunctionTags", c.LambdaFunctionTags}} {
		if m.list == nil {
			continue
		}
		p := prefix + "." + m.name
		if len(m.list) < 1 || len(m.list) > maxResourceFilters {
			return findings.Invalid(findings.ReasonFieldValidationFailed, p, fmt.Sprintf("must have between 1 and %d filters", maxResourceFilters))
		}
		for i, f := range m.list {
			if f.Comparison != "EQUALS" {
				return findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("%s[%d].comparison", p, i), "must be EQUALS")
			}
			if f.Key == "" {
				return findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("%s[%d].key", p, i), "is required")
			}
		}
	}
	return nil
}

// ResourceType of an ECR image, as Inspector names it.
const resourceTypeImage = "AWS_ECR_CONTAINER_IMAGE"

// ImageResourceID is an image's resource id, as findings name it.
func ImageResourceID(region, account, repo, dgst string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s/%s", region, account, repo, dgst)
}

// matchOne applies one member's filters to the values an image has for it.
func matchOne(filters []ResourceFilter, values ...string) bool {
	if filters == nil {
		return true
	}
	anyEquals, equalled := false, false
	for _, f := range filters {
		has := slices.Contains(values, f.Value)
		switch f.Comparison {
		case "EQUALS":
			anyEquals = true
			equalled = equalled || has
		case "NOT_EQUALS":
			if has {
				return false
			}
		}
	}
	return !anyEquals || equalled
}

// matches reports whether the criteria select an image.
func (c ResourceCriteria) matches(im store.InventoriedImage, account, region string) bool {
	if c.LambdaFunctionName != nil || c.EC2InstanceTags != nil || c.LambdaFunctionTags != nil {
		return false
	}
	return matchOne(c.AccountID, account) && matchOne(c.ResourceType, resourceTypeImage) &&
		matchOne(c.ResourceID, ImageResourceID(region, account, im.Repository, im.Digest)) &&
		matchOne(c.ECRRepositoryName, im.Repository) && matchOne(c.ECRImageTags, im.Tags...)
}
