package findings

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// AggregationType is what ListFindingAggregations groups findings by, as Inspector names it.
type AggregationType string

// Aggregation types with a meaning for container image findings. The model's others (AMI,
// AWS_EC2_INSTANCE, ACCOUNT, AWS_LAMBDA_FUNCTION, LAMBDA_LAYER, CODE_REPOSITORY) group
// resources the registry does not have.
const (
	AggregateRepository  AggregationType = "REPOSITORY"
	AggregateImage       AggregationType = "AWS_ECR_CONTAINER"
	AggregateImageLayer  AggregationType = "IMAGE_LAYER"
	AggregatePackage     AggregationType = "PACKAGE"
	AggregateTitle       AggregationType = "TITLE"
	AggregateFindingType AggregationType = "FINDING_TYPE"
	AggregateAccount     AggregationType = "ACCOUNT"
	AggregateAMI         AggregationType = "AMI"
	AggregateEC2Instance AggregationType = "AWS_EC2_INSTANCE"
	AggregateLambda      AggregationType = "AWS_LAMBDA_FUNCTION"
	AggregateLambdaLayer AggregationType = "LAMBDA_LAYER"
	AggregateCodeRepo    AggregationType = "CODE_REPOSITORY"
)

// AggregationTypes lists the model's aggregation types.
func AggregationTypes() []AggregationType {
	return []AggregationType{AggregateFindingType, AggregatePackage, AggregateTitle, AggregateRepository, AggregateAMI, AggregateEC2Instance,
		AggregateImage, AggregateImageLayer, AggregateAccount, AggregateLambda, AggregateLambdaLayer, AggregateCodeRepo}
}

// Supported reports whether Lading groups findings by t (the others are valid requests that
// group nothing: no finding of the registry is about an EC2 instance or a Lambda function).
func (t AggregationType) Supported() bool {
	switch t {
	case AggregateRepository, AggregateImage, AggregateImageLayer, AggregatePackage, AggregateTitle, AggregateFindingType:
		return true
	}
	return false
}

// AggregationSort is what groups are ordered by: a severity count, or the images affected.
type AggregationSort string

// Aggregation sorts.
const (
	SortByCritical       AggregationSort = "CRITICAL"
	SortByHigh           AggregationSort = "HIGH"
	SortByAll            AggregationSort = "ALL"
	SortByAffectedImages AggregationSort = "AFFECTED_IMAGES" // REPOSITORY only
)

// Aggregation is a ListFindingAggregations request in the domain's types. Its filters are
// the members of the type's request member (aggregationRequest.repositoryAggregation, ...) by
// their wire names: which finding criterion each one is is the domain's rule (aggregationFilters).
type Aggregation struct {
	// Op is the operation asking: tokens are bound to it.
	Op         string
	Type       AggregationType
	AccountIDs []StringFilter
	Strings    map[string][]StringFilter
	Dates      map[string][]DateFilter
	Numbers    map[string][]NumberFilter
	// Enums are the single-valued members (findingType, resourceType of TITLE and FINDING_TYPE).
	Enums      map[string]string
	SortBy     AggregationSort
	SortOrder  Order
	MaxResults *int
	NextToken  *string
}

// AggregationMember is the name of t's member in the request and response unions.
func AggregationMember(t AggregationType) string {
	switch t {
	case AggregateRepository:
		return "repositoryAggregation"
	case AggregateImage:
		return "awsEcrContainerAggregation"
	case AggregateImageLayer:
		return "imageLayerAggregation"
	case AggregatePackage:
		return "packageAggregation"
	case AggregateTitle:
		return "titleAggregation"
	case AggregateFindingType:
		return "findingTypeAggregation"
	case AggregateAccount:
		return "accountAggregation"
	case AggregateAMI:
		return "amiAggregation"
	case AggregateEC2Instance:
		return "ec2InstanceAggregation"
	case AggregateLambda:
		return "lambdaFunctionAggregation"
	case AggregateLambdaLayer:
		return "lambdaLayerAggregation"
	case AggregateCodeRepo:
		return "codeRepositoryAggregation"
	}
	return ""
}

// Group keys a filter may apply to instead of a finding criterion.
const (
	groupLayer   Field = "@layer"
	groupPackage Field = "@package"
)

// aggregationFilters maps the filter members of a type's request to finding criteria (or
// group keys). Members of the model's other types are accepted by the face's decoder only
// for those types.
func aggregationFilters(t AggregationType) map[string]Field {
	switch t {
	case AggregateRepository:
		return map[string]Field{"repositories": ECRImageRepositoryName}
	case AggregateImage:
		return map[string]Field{"resourceIds": ResourceID, "imageShas": ECRImageHash, "repositories": ECRImageRepositoryName,
			"architectures": ECRImageArchitecture, "imageTags": ECRImageTags, "lastInUseAt": ECRImageLastInUseAt, "inUseCount": ECRImageInUseCount}
	case AggregateImageLayer:
		return map[string]Field{"repositories": ECRImageRepositoryName, "resourceIds": ResourceID, "layerHashes": groupLayer}
	case AggregatePackage:
		return map[string]Field{"packageNames": groupPackage}
	case AggregateTitle:
		return map[string]Field{"titles": Title, "vulnerabilityIds": VulnerabilityID, "findingType": FindingType, "resourceType": ResourceType}
	case AggregateFindingType:
		return map[string]Field{"findingType": FindingType, "resourceType": ResourceType}
	}
	return map[string]Field{}
}

// SeverityCounts are the ACTIVE findings of a group: Inspector counts no low or informational
// ones apart (All has them).
type SeverityCounts struct {
	All, Medium, High, Critical int64
}

// AggregateRow is one group. The key fields set are those of the aggregation type.
type AggregateRow struct {
	Repository, Digest, LayerHash, PackageName, Title, VulnerabilityID string
	Counts                                                             SeverityCounts
	// AffectedImages (REPOSITORY) counts the images with an ACTIVE finding.
	AffectedImages int64
	// ExploitAvailable and FixAvailable (FINDING_TYPE) count findings with a known exploit and
	// with a fix (YES or PARTIAL).
	ExploitAvailable, FixAvailable int64
	// Image (AWS_ECR_CONTAINER) is the image as it is now: tags, architecture, last pull.
	Architecture string
	Tags         []string
	LastPulledAt time.Time
}

// AggregationQuery is what the store is asked for: one page of groups.
type AggregationQuery struct {
	Type             AggregationType
	Criteria         Criteria
	Layers, Packages []StringFilter
	SortBy           AggregationSort
	SortOrder        Order
	Offset, Limit    int
	Account, Region  string
	Exploited        []string
}

// AggregationOutput is a page of groups.
type AggregationOutput struct {
	Type      AggregationType
	Rows      []AggregateRow
	NextToken string
}

// AggregationStore is what Aggregate needs of the store.
type AggregationStore interface {
	// AggregateFindings returns the groups of the ACTIVE ENHANCED findings matching q, in q's
	// order, from q.Offset, at most q.Limit.
	AggregateFindings(ctx context.Context, q AggregationQuery) ([]AggregateRow, error)
}

// DefaultAggregationPageSize is a page without maxResults.
const DefaultAggregationPageSize = 50

// Aggregate returns a page of groups of the registry's ACTIVE findings. Groups are ordered by
// SortBy (CRITICAL by default), DESC by default, ties by the group's key.
func (s *Service) Aggregate(ctx context.Context, in Aggregation) (AggregationOutput, error) {
	out := AggregationOutput{Type: in.Type}
	q, err := aggregationQuery(in)
	if err != nil {
		return out, err
	}
	st, ok := s.store.(AggregationStore)
	if !ok {
		return out, errors.New("aggregate findings: the store has no aggregations")
	}
	limit := DefaultAggregationPageSize
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	hash := aggregationHash(q)
	if in.NextToken != nil && *in.NextToken != "" {
		if q.Offset, err = decodeOffsetToken(in.Op, hash, *in.NextToken); err != nil {
			return out, err
		}
	}
	if !in.Type.Supported() {
		return out, nil
	}
	q.Limit, q.Account, q.Region, q.Exploited = limit+1, s.account, s.region, s.kev.IDs()
	rows, err := st.AggregateFindings(ctx, q)
	if err != nil {
		return out, fmt.Errorf("aggregate findings: %w", err)
	}
	out.Rows = rows
	if len(rows) > limit {
		out.Rows = rows[:limit]
		out.NextToken = encodeOffsetToken(in.Op, hash, q.Offset+limit)
	}
	return out, nil
}

// aggregationQuery validates a request against the model's rules (paths as the wire spells
// them) and makes it the store's query: its filters as finding criteria, with only ACTIVE
// findings counted, as Inspector's aggregations count them.
func aggregationQuery(in Aggregation) (AggregationQuery, error) {
	q := AggregationQuery{Type: in.Type, SortBy: in.SortBy, SortOrder: in.SortOrder,
		Criteria: Criteria{Strings: map[Field][]StringFilter{FindingStatus: {{Comparison: Equals, Value: "ACTIVE"}}}}}
	v := &validation{}
	if !slices.Contains(AggregationTypes(), in.Type) {
		v.add("aggregationType", fmt.Sprintf("Value '%s' is not one of %v", in.Type, AggregationTypes()))
		return q, v.err()
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > MaxPageSize) {
		v.add("maxResults", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
	}
	prefix := "aggregationRequest." + AggregationMember(in.Type)
	filters := aggregationFilters(in.Type)
	member := func(name string, want Kind) (Field, bool) {
		f, ok := filters[name]
		if !ok {
			v.add(prefix+"."+name, "is not a member of "+AggregationMember(in.Type))
			return "", false
		}
		if k, known := KindOf(f); f != groupLayer && f != groupPackage && (!known || k != want) {
			v.add(prefix+"."+name, "has filters of the wrong type")
			return "", false
		}
		return f, true
	}
	count := func(p string, n int) {
		if n < 1 || n > MaxFiltersPerCriterion {
			v.add(p, fmt.Sprintf("must have between 1 and %d filters", MaxFiltersPerCriterion))
		}
	}
	if in.AccountIDs != nil {
		count("accountIds", len(in.AccountIDs))
		for i, sf := range in.AccountIDs {
			v.stringFilter(fmt.Sprintf("accountIds[%d]", i), sf)
		}
		q.Criteria.Strings[AWSAccountID] = in.AccountIDs
	}
	for _, name := range sortedKeys(in.Strings) {
		list := in.Strings[name]
		f, ok := member(name, KindString)
		if !ok {
			continue
		}
		p := prefix + "." + name
		count(p, len(list))
		for i, sf := range list {
			v.stringFilter(fmt.Sprintf("%s[%d]", p, i), sf)
		}
		switch f {
		case groupLayer:
			q.Layers = list
		case groupPackage:
			q.Packages = list
		default:
			q.Criteria.Strings[f] = list
		}
	}
	for _, name := range sortedKeys(in.Dates) {
		list := in.Dates[name]
		if f, ok := member(name, KindDate); ok {
			count(prefix+"."+name, len(list))
			q.Criteria.Dates = setOne(q.Criteria.Dates, f, list)
			for i, df := range list {
				if df.Start != nil && df.End != nil && df.End.Before(*df.Start) {
					v.add(fmt.Sprintf("%s.%s[%d]", prefix, name, i), "endInclusive is before startInclusive")
				}
			}
		}
	}
	for _, name := range sortedKeys(in.Numbers) {
		list := in.Numbers[name]
		if f, ok := member(name, KindNumber); ok {
			count(prefix+"."+name, len(list))
			q.Criteria.Numbers = setOne(q.Criteria.Numbers, f, list)
			for i, nf := range list {
				if nf.Lower != nil && nf.Upper != nil && *nf.Upper < *nf.Lower {
					v.add(fmt.Sprintf("%s.%s[%d]", prefix, name, i), "upperInclusive is below lowerInclusive")
				}
			}
		}
	}
	for _, name := range sortedKeys(in.Enums) {
		value := in.Enums[name]
		f, ok := member(name, KindString)
		if !ok {
			continue
		}
		allowed := []string{"NETWORK_REACHABILITY", "PACKAGE_VULNERABILITY", "CODE_VULNERABILITY"}
		if f == ResourceType {
			allowed = []string{"AWS_EC2_INSTANCE", "AWS_ECR_CONTAINER_IMAGE", "AWS_LAMBDA_FUNCTION", "CODE_REPOSITORY"}
		}
		if !slices.Contains(allowed, value) {
			v.add(prefix+"."+name, fmt.Sprintf("Value '%s' is not one of %v", value, allowed))
			continue
		}
		q.Criteria.Strings[f] = []StringFilter{{Comparison: Equals, Value: value}}
	}
	sorts := []AggregationSort{SortByCritical, SortByHigh, SortByAll}
	if in.Type == AggregateRepository {
		sorts = append(sorts, SortByAffectedImages)
	}
	if in.SortBy != "" && !slices.Contains(sorts, in.SortBy) {
		v.add(prefix+".sortBy", fmt.Sprintf("Value '%s' is not one of %v", in.SortBy, sorts))
	}
	if in.SortOrder != "" && in.SortOrder != Asc && in.SortOrder != Desc {
		v.add(prefix+".sortOrder", fmt.Sprintf("Value '%s' is not one of [ASC DESC]", in.SortOrder))
	}
	if q.SortBy == "" {
		q.SortBy = SortByCritical
	}
	if q.SortOrder == "" {
		q.SortOrder = Desc
	}
	return q, v.err()
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error named is the same every time
	return keys
}

func setOne[T any](m map[Field][]T, f Field, v []T) map[Field][]T {
	if m == nil {
		m = map[Field][]T{}
	}
	m[f] = v
	return m
}

// aggregationHash identifies an aggregation's type, filters and order (not its page).
func aggregationHash(q AggregationQuery) string {
	q.Offset, q.Limit = 0, 0
	b, err := json.Marshal(q)
	if err != nil {
		panic(err) // plain data always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// offsetToken is the nextToken of a listing paged by position (groups, whose order changes as
// findings do, have no stable key to resume after): bound to the operation and query.
type offsetToken struct {
	Op     string `json:"o"`
	Query  string `json:"q"`
	Offset int    `json:"k"`
}

func encodeOffsetToken(op, query string, offset int) string {
	b, err := json.Marshal(offsetToken{Op: op, Query: query, Offset: offset})
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeOffsetToken(op, query, token string) (int, error) {
	bad := func(why string) error { return Invalid(ReasonFieldValidationFailed, "nextToken", why) }
	if len(token) > maxTokenLen {
		return 0, bad("the token is not one this listing issued")
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, bad("the token is not one this listing issued")
	}
	var t offsetToken
	if err := json.Unmarshal(b, &t); err != nil || t.Op == "" || t.Offset < 0 {
		return 0, bad("the token is not one this listing issued")
	}
	if t.Op != op {
		return 0, bad(fmt.Sprintf("the token was issued by %s, not %s", t.Op, op))
	}
	if t.Query != query {
		return 0, bad("the token was issued for another aggregation or filter")
	}
	return t.Offset, nil
}
