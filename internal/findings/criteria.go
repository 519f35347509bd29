// Package findings is the query model of vulnerability findings, as Inspector's ListFindings
// (and later CreateFilter, CreateFindingsReport and the console) asks for them: typed filter
// criteria, sort and page, with their validation rules (pure), the cursor tokens of pages, and
// Service, which runs a query against the store and knows what a finding's exploitability is
// (the KEV catalogue). Faces translate their wire shapes to these types and back; the SQL is
// the store's.
package findings

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Comparison is how a StringFilter compares.
type Comparison string

// Comparisons, as Inspector names them.
const (
	Equals    Comparison = "EQUALS"
	Prefix    Comparison = "PREFIX"
	NotEquals Comparison = "NOT_EQUALS"
)

// StringFilter matches a text value.
type StringFilter struct {
	Comparison Comparison
	Value      string
}

// DateFilter matches a time in [Start, End]; a nil bound is open.
type DateFilter struct {
	Start, End *time.Time
}

// NumberFilter matches a number in [Lower, Upper]; a nil bound is open.
type NumberFilter struct {
	Lower, Upper *float64
}

// MapFilter matches a key of a tag map (Comparison is always EQUALS).
type MapFilter struct {
	Comparison Comparison
	Key, Value string
}

// PortRangeFilter matches a port range (network findings only).
type PortRangeFilter struct {
	Begin, End *int
}

// PackageFilter matches a finding with one vulnerable package meeting every filter set.
type PackageFilter struct {
	Name, Version, Release, Architecture, SourceLayerHash, SourceLambdaLayerArn, FilePath *StringFilter
	Epoch                                                                                 *NumberFilter
	// Reachability is Lading's: a Go package's match.ReachPresent, ReachAbsent or ReachUnknown
	// ("" for the packages of other ecosystems, which no filter value matches).
	Reachability *StringFilter
}

// Field names a criterion: a member of Inspector's FilterCriteria.
type Field string

// Kind is the type of a criterion's filters.
type Kind int

// Kinds of criteria.
const (
	KindString Kind = iota + 1
	KindDate
	KindNumber
	KindMap
	KindPortRange
	KindPackage
)

// Criteria of findings about container images, the ones Lading has values for.
const (
	FindingARN             Field = "findingArn"
	AWSAccountID           Field = "awsAccountId"
	FindingType            Field = "findingType"
	Severity               Field = "severity"
	FirstObservedAt        Field = "firstObservedAt"
	LastObservedAt         Field = "lastObservedAt"
	UpdatedAt              Field = "updatedAt"
	FindingStatus          Field = "findingStatus"
	Title                  Field = "title"
	InspectorScore         Field = "inspectorScore"
	ResourceType           Field = "resourceType"
	ResourceID             Field = "resourceId"
	ResourceTags           Field = "resourceTags"
	ECRImagePushedAt       Field = "ecrImagePushedAt"
	ECRImageArchitecture   Field = "ecrImageArchitecture"
	ECRImageRegistry       Field = "ecrImageRegistry"
	ECRImageRepositoryName Field = "ecrImageRepositoryName"
	ECRImageTags           Field = "ecrImageTags"
	ECRImageHash           Field = "ecrImageHash"
	ECRImageLastInUseAt    Field = "ecrImageLastInUseAt"
	ECRImageInUseCount     Field = "ecrImageInUseCount"
	VulnerabilityID        Field = "vulnerabilityId"
	VulnerabilitySource    Field = "vulnerabilitySource"
	VendorSeverity         Field = "vendorSeverity"
	VulnerablePackages     Field = "vulnerablePackages"
	RelatedVulnerabilities Field = "relatedVulnerabilities"
	FixAvailable           Field = "fixAvailable"
	ExploitAvailable       Field = "exploitAvailable"
	EPSSScore              Field = "epssScore"
)

// KindOf returns the kind of a criterion of Inspector's FilterCriteria, and false for a name
// the model does not have. Criteria about EC2 instances, Lambda functions, code repositories
// and network reachability are the model's too: no container image finding has a value for
// them (see Applies).
func KindOf(f Field) (Kind, bool) {
	switch f {
	case FindingARN, AWSAccountID, FindingType, Severity, FindingStatus, Title, ResourceType, ResourceID, ECRImageArchitecture,
		ECRImageRegistry, ECRImageRepositoryName, ECRImageTags, ECRImageHash, VulnerabilityID, VulnerabilitySource, VendorSeverity,
		RelatedVulnerabilities, FixAvailable, ExploitAvailable,
		"componentId", "componentType", "networkProtocol", "ec2InstanceImageId", "ec2InstanceSubnetId", "ec2InstanceVpcId",
		"lambdaFunctionExecutionRoleArn", "lambdaFunctionLayers", "lambdaFunctionName", "lambdaFunctionRuntime",
		"codeRepositoryProjectName", "codeRepositoryProviderType", "codeVulnerabilityDetectorName", "codeVulnerabilityDetectorTags",
		"codeVulnerabilityFilePath":
		return KindString, true
	case FirstObservedAt, LastObservedAt, UpdatedAt, ECRImagePushedAt, ECRImageLastInUseAt, "lambdaFunctionLastModifiedAt":
		return KindDate, true
	case InspectorScore, ECRImageInUseCount, EPSSScore:
		return KindNumber, true
	case ResourceTags:
		return KindMap, true
	case "portRange":
		return KindPortRange, true
	case VulnerablePackages:
		return KindPackage, true
	}
	return 0, false
}

// Applies reports whether a container image finding can have a value for a criterion. For one
// that does not apply (an EC2 instance's VPC, a Lambda function's name) the value is absent:
// EQUALS and PREFIX filters never match it, NOT_EQUALS always does, ranges never do. Lading
// records no EPSS scores or in-use counts, so those are absent too.
func Applies(f Field) bool {
	switch f {
	case FindingARN, AWSAccountID, FindingType, Severity, FirstObservedAt, LastObservedAt, UpdatedAt, FindingStatus, Title,
		InspectorScore, ResourceType, ResourceID, ResourceTags, ECRImagePushedAt, ECRImageArchitecture, ECRImageRegistry,
		ECRImageRepositoryName, ECRImageTags, ECRImageHash, ECRImageLastInUseAt, VulnerabilityID, VulnerabilitySource,
		VendorSeverity, VulnerablePackages, RelatedVulnerabilities, FixAvailable, ExploitAvailable:
		return true
	}
	return false
}

// Criteria are the filters of a query: within a criterion a finding matches any filter, and it
// must match every criterion given.
type Criteria struct {
	Strings    map[Field][]StringFilter
	Dates      map[Field][]DateFilter
	Numbers    map[Field][]NumberFilter
	Maps       map[Field][]MapFilter
	PortRanges map[Field][]PortRangeFilter
	Packages   []PackageFilter
}

// IsZero reports whether no criterion is set.
func (c Criteria) IsZero() bool {
	return len(c.Strings) == 0 && len(c.Dates) == 0 && len(c.Numbers) == 0 && len(c.Maps) == 0 && len(c.PortRanges) == 0 && len(c.Packages) == 0
}

// SortField is what a query sorts by, as Inspector names it.
type SortField string

// Sort fields.
const (
	SortAWSAccountID           SortField = "AWS_ACCOUNT_ID"
	SortFindingType            SortField = "FINDING_TYPE"
	SortSeverity               SortField = "SEVERITY"
	SortFirstObservedAt        SortField = "FIRST_OBSERVED_AT"
	SortLastObservedAt         SortField = "LAST_OBSERVED_AT"
	SortFindingStatus          SortField = "FINDING_STATUS"
	SortResourceType           SortField = "RESOURCE_TYPE"
	SortECRImagePushedAt       SortField = "ECR_IMAGE_PUSHED_AT"
	SortECRImageRepositoryName SortField = "ECR_IMAGE_REPOSITORY_NAME"
	SortECRImageRegistry       SortField = "ECR_IMAGE_REGISTRY"
	SortNetworkProtocol        SortField = "NETWORK_PROTOCOL"
	SortComponentType          SortField = "COMPONENT_TYPE"
	SortVulnerabilityID        SortField = "VULNERABILITY_ID"
	SortVulnerabilitySource    SortField = "VULNERABILITY_SOURCE"
	SortInspectorScore         SortField = "INSPECTOR_SCORE"
	SortVendorSeverity         SortField = "VENDOR_SEVERITY"
	SortEPSSScore              SortField = "EPSS_SCORE"
)

// SortFields lists Inspector's sort fields.
func SortFields() []SortField {
	return []SortField{SortAWSAccountID, SortFindingType, SortSeverity, SortFirstObservedAt, SortLastObservedAt, SortFindingStatus,
		SortResourceType, SortECRImagePushedAt, SortECRImageRepositoryName, SortECRImageRegistry, SortNetworkProtocol,
		SortComponentType, SortVulnerabilityID, SortVulnerabilitySource, SortInspectorScore, SortVendorSeverity, SortEPSSScore}
}

// Varies reports whether findings of container images can differ in a sort field. Sorting by
// one that does not (one account, one type, no EPSS scores) keeps the default order.
func (f SortField) Varies() bool {
	switch f {
	case SortSeverity, SortFirstObservedAt, SortLastObservedAt, SortFindingStatus, SortECRImagePushedAt, SortECRImageRepositoryName,
		SortVulnerabilityID, SortVulnerabilitySource, SortInspectorScore, SortVendorSeverity:
		return true
	}
	return false
}

// Order is a sort direction.
type Order string

// Sort orders.
const (
	Asc  Order = "ASC"
	Desc Order = "DESC"
)

// Sort orders a query's results. The zero Sort is the default order: by repository, image and
// vulnerability, the order the store's index keeps, so a first page is quick whatever the
// filter.
type Sort struct {
	Field SortField
	Order Order
}

// Limits of Inspector's model.
const (
	MaxFiltersPerCriterion = 10
	MaxStringValue         = 1024
	MaxMapKey              = 128
	MaxMapValue            = 256
	MaxPageSize            = 100
	// DefaultPageSize is what a ListFindings without maxResults gets; Inspector's model caps
	// a page of findings at 25 too.
	DefaultPageSize = 25
)

// Validate checks criteria and sort against the model's rules. The error is a
// *ValidationError naming every field at fault (paths as the wire spells them, under prefix).
func Validate(prefix string, c Criteria, s *Sort) error {
	v := &validation{}
	for f, list := range c.Strings {
		v.count(prefix, f, KindString, len(list))
		for i, sf := range list {
			v.stringFilter(fmt.Sprintf("%s.%s[%d]", prefix, f, i), sf)
		}
	}
	for f, list := range c.Dates {
		v.count(prefix, f, KindDate, len(list))
		for i, df := range list {
			if df.Start != nil && df.End != nil && df.End.Before(*df.Start) {
				v.add(fmt.Sprintf("%s.%s[%d]", prefix, f, i), "endInclusive is before startInclusive")
			}
		}
	}
	for f, list := range c.Numbers {
		v.count(prefix, f, KindNumber, len(list))
		for i, nf := range list {
			if nf.Lower != nil && nf.Upper != nil && *nf.Upper < *nf.Lower {
				v.add(fmt.Sprintf("%s.%s[%d]", prefix, f, i), "upperInclusive is below lowerInclusive")
			}
		}
	}
	for f, list := range c.Maps {
		v.count(prefix, f, KindMap, len(list))
		for i, mf := range list {
			p := fmt.Sprintf("%s.%s[%d]", prefix, f, i)
			if mf.Comparison != Equals {
				v.add(p+".comparison", fmt.Sprintf("Value '%s' is not one of [EQUALS]", mf.Comparison))
			}
			if n := utf8.RuneCountInString(mf.Key); n < 1 || n > MaxMapKey {
				v.add(p+".key", fmt.Sprintf("length must be between 1 and %d", MaxMapKey))
			}
			if utf8.RuneCountInString(mf.Value) > MaxMapValue {
				v.add(p+".value", fmt.Sprintf("length must be at most %d", MaxMapValue))
			}
		}
	}
	for f, list := range c.PortRanges {
		v.count(prefix, f, KindPortRange, len(list))
		for i, pr := range list {
			p := fmt.Sprintf("%s.%s[%d]", prefix, f, i)
			for _, b := range []*int{pr.Begin, pr.End} {
				if b != nil && (*b < 0 || *b > 65535) {
					v.add(p, "ports must be between 0 and 65535")
				}
			}
		}
	}
	if len(c.Packages) > 0 {
		v.count(prefix, VulnerablePackages, KindPackage, len(c.Packages))
	}
	for i, pf := range c.Packages {
		p := fmt.Sprintf("%s.%s[%d]", prefix, VulnerablePackages, i)
		for name, sf := range pf.stringFilters() {
			if sf != nil {
				v.stringFilter(p+"."+name, *sf)
			}
		}
		if pf.Epoch != nil && pf.Epoch.Lower != nil && pf.Epoch.Upper != nil && *pf.Epoch.Upper < *pf.Epoch.Lower {
			v.add(p+".epoch", "upperInclusive is below lowerInclusive")
		}
	}
	if s != nil {
		if !slices.Contains(SortFields(), s.Field) {
			v.add("sortCriteria.field", fmt.Sprintf("Value '%s' is not one of %v", s.Field, SortFields()))
		}
		if s.Order != Asc && s.Order != Desc {
			v.add("sortCriteria.sortOrder", fmt.Sprintf("Value '%s' is not one of [ASC DESC]", s.Order))
		}
	}
	return v.err()
}

// stringFilters names a package filter's string filters as the wire does, in a fixed order.
func (pf PackageFilter) stringFilters() map[string]*StringFilter {
	return map[string]*StringFilter{"name": pf.Name, "version": pf.Version, "release": pf.Release, "architecture": pf.Architecture,
		"sourceLayerHash": pf.SourceLayerHash, "sourceLambdaLayerArn": pf.SourceLambdaLayerArn, "filePath": pf.FilePath,
		"reachability": pf.Reachability}
}

type validation struct{ fields []FieldError }

func (v *validation) add(name, msg string) {
	v.fields = append(v.fields, FieldError{Name: name, Message: msg})
}

func (v *validation) count(prefix string, f Field, want Kind, n int) {
	p := prefix + "." + string(f)
	if k, ok := KindOf(f); !ok {
		v.add(p, "is not a filter criterion")
		return
	} else if k != want {
		v.add(p, "has filters of the wrong type")
	}
	if n < 1 || n > MaxFiltersPerCriterion {
		v.add(p, fmt.Sprintf("must have between 1 and %d filters", MaxFiltersPerCriterion))
	}
}

func (v *validation) stringFilter(p string, sf StringFilter) {
	switch sf.Comparison {
	case Equals, Prefix, NotEquals:
	default:
		v.add(p+".comparison", fmt.Sprintf("Value '%s' is not one of [EQUALS PREFIX NOT_EQUALS]", sf.Comparison))
	}
	if n := utf8.RuneCountInString(sf.Value); n < 1 || n > MaxStringValue {
		v.add(p+".value", fmt.Sprintf("length must be between 1 and %d", MaxStringValue))
	}
}

func (v *validation) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	slices.SortFunc(v.fields, func(a, b FieldError) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return &ValidationError{Reason: ReasonFieldValidationFailed, Fields: v.fields}
}
