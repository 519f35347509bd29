package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/findings"
)

func testAggregateFindings(t *testing.T, open Opener) {
	fx := newQueryFixture(t, open)
	svc := findings.NewService(fx.db, nil, nil, testOrigin.Account, testOrigin.Region)
	// row renders a group as "key all/medium/high/critical [images]".
	row := func(typ findings.AggregationType, r findings.AggregateRow) string {
		key := map[findings.AggregationType]string{findings.AggregateRepository: r.Repository, findings.AggregateImage: r.Repository + "@" + strings.TrimLeft(strings.TrimPrefix(r.Digest, "sha256:"), "0"),
			findings.AggregateImageLayer: r.Repository + " " + r.LayerHash, findings.AggregatePackage: r.PackageName, findings.AggregateTitle: r.Title}[typ]
		s := fmt.Sprintf("%s %d/%d/%d/%d", key, r.Counts.All, r.Counts.Medium, r.Counts.High, r.Counts.Critical)
		switch typ {
		case findings.AggregateRepository:
			s += fmt.Sprintf(" %d", r.AffectedImages)
		case findings.AggregateFindingType:
			s += fmt.Sprintf(" fix %d", r.FixAvailable)
		case findings.AggregateImage:
			s += " " + r.Architecture + " " + strings.Join(r.Tags, ",")
		}
		return strings.TrimSpace(s)
	}
	eq := func(v string) []findings.StringFilter {
		return []findings.StringFilter{{Comparison: findings.Equals, Value: v}}
	}
	for _, tc := range []struct {
		name string
		in   findings.Aggregation
		want []string
	}{
		{"repositories by critical", findings.Aggregation{Type: findings.AggregateRepository},
			[]string{"prod/neo4j 2/1/0/1 1", "test/web 1/0/0/1 1", "prod/web 2/1/0/0 1"}},
		{"repositories by all, ascending", findings.Aggregation{Type: findings.AggregateRepository, SortBy: findings.SortByAll, SortOrder: findings.Asc},
			[]string{"test/web 1/0/0/1 1", "prod/neo4j 2/1/0/1 1", "prod/web 2/1/0/0 1"}},
		{"images of prod", findings.Aggregation{Type: findings.AggregateImage, Strings: map[string][]findings.StringFilter{"repositories": {{Comparison: findings.Prefix, Value: "prod/"}}}},
			[]string{"prod/neo4j@1 2/1/0/1 amd64 4.4.0", "prod/web@2 2/1/0/0 arm64 1.0"}},
		// A finding with packages in two layers counts in each layer, once.
		{"layers of prod/web", findings.Aggregation{Type: findings.AggregateImageLayer, Strings: map[string][]findings.StringFilter{"repositories": eq("prod/web")},
			SortBy: findings.SortByAll}, []string{"prod/web sha256:bbbb 2/1/0/0", "prod/web sha256:aaaa 1/0/0/0"}},
		{"one layer", findings.Aggregation{Type: findings.AggregateImageLayer, Strings: map[string][]findings.StringFilter{"layerHashes": eq("sha256:aaaa")}},
			[]string{"prod/neo4j sha256:aaaa 1/0/0/1", "test/web sha256:aaaa 1/0/0/1", "prod/web sha256:aaaa 1/0/0/0"}},
		{"packages", findings.Aggregation{Type: findings.AggregatePackage, SortBy: findings.SortByAll},
			[]string{"openssl 3/2/0/0", "org.apache.logging.log4j:log4j-core 3/0/0/2"}},
		{"titles of a vulnerability", findings.Aggregation{Type: findings.AggregateTitle, Strings: map[string][]findings.StringFilter{"vulnerabilityIds": eq("CVE-2021-44228")}},
			[]string{"CVE-2021-44228 - pkg 2/0/0/2"}},
		{"finding type", findings.Aggregation{Type: findings.AggregateFindingType}, []string{"5/2/0/2 fix 3"}},
		{"finding type of another resource", findings.Aggregation{Type: findings.AggregateFindingType, Enums: map[string]string{"resourceType": "AWS_LAMBDA_FUNCTION"}},
			[]string{"0/0/0/0 fix 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Pages of one, followed to the end, are the whole.
			var got []string
			in := tc.in
			in.Op, in.MaxResults = "ListFindingAggregations", ptr(1)
			for range 10 {
				out, err := svc.Aggregate(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range out.Rows {
					got = append(got, row(tc.in.Type, r))
				}
				if out.NextToken == "" {
					break
				}
				in.NextToken = &out.NextToken
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
