package inspector

// operation is one operation of Inspector2's model: its name, method and path (restJson1's
// http trait), and its implementation, nil while Lading has none (answered 501, naming it).
type operation struct {
	Name   string
	Method string
	Path   string
	handle handlerFunc
}

// operations lists every operation of the model (aws-sdk-go-v2/service/inspector2 v1.48.2's
// serializers), so that an operation Lading lacks is answered by name rather than as an
// unknown path. Implementing one is filling in its entry.
func (h *Handler) operations() []operation {
	return []operation{
		{"AssociateMember", "POST", "/members/associate", nil},
		{"BatchAssociateCodeSecurityScanConfiguration", "POST", "/codesecurity/scan-configuration/batch/associate", nil},
		{"BatchDisassociateCodeSecurityScanConfiguration", "POST", "/codesecurity/scan-configuration/batch/disassociate", nil},
		{"BatchGetAccountStatus", "POST", "/status/batch/get", h.batchGetAccountStatus},
		{"BatchGetCodeSnippet", "POST", "/codesnippet/batchget", nil},
		{"BatchGetFindingDetails", "POST", "/findings/details/batch/get", h.batchGetFindingDetails},
		{"BatchGetFreeTrialInfo", "POST", "/freetrialinfo/batchget", nil},
		{"BatchGetMemberEc2DeepInspectionStatus", "POST", "/ec2deepinspectionstatus/member/batch/get", nil},
		{"BatchUpdateMemberEc2DeepInspectionStatus", "POST", "/ec2deepinspectionstatus/member/batch/update", nil},
		{"CancelFindingsReport", "POST", "/reporting/cancel", h.reports(h.cancelReport(Reports.CancelFindingsReport))},
		{"CancelSbomExport", "POST", "/sbomexport/cancel", h.reports(h.cancelReport(Reports.CancelSBOMExport))},
		{"CreateCisScanConfiguration", "POST", "/cis/scan-configuration/create", nil},
		{"CreateCodeSecurityIntegration", "POST", "/codesecurity/integration/create", nil},
		{"CreateCodeSecurityScanConfiguration", "POST", "/codesecurity/scan-configuration/create", nil},
		{"CreateFilter", "POST", "/filters/create", h.createFilter},
		{"CreateFindingsReport", "POST", "/reporting/create", h.reports(h.createFindingsReport)},
		{"CreateSbomExport", "POST", "/sbomexport/create", h.reports(h.createSbomExport)},
		{"DeleteCisScanConfiguration", "POST", "/cis/scan-configuration/delete", nil},
		{"DeleteCodeSecurityIntegration", "POST", "/codesecurity/integration/delete", nil},
		{"DeleteCodeSecurityScanConfiguration", "POST", "/codesecurity/scan-configuration/delete", nil},
		{"DeleteFilter", "POST", "/filters/delete", h.deleteFilter},
		{"DescribeOrganizationConfiguration", "POST", "/organizationconfiguration/describe", nil},
		{"Disable", "POST", "/disable", h.disable},
		{"DisableDelegatedAdminAccount", "POST", "/delegatedadminaccounts/disable", nil},
		{"DisassociateMember", "POST", "/members/disassociate", nil},
		{"Enable", "POST", "/enable", h.enable},
		{"EnableDelegatedAdminAccount", "POST", "/delegatedadminaccounts/enable", nil},
		{"GetCisScanReport", "POST", "/cis/scan/report/get", nil},
		{"GetCisScanResultDetails", "POST", "/cis/scan-result/details/get", nil},
		{"GetClustersForImage", "POST", "/cluster/get", nil},
		{"GetCodeSecurityIntegration", "POST", "/codesecurity/integration/get", nil},
		{"GetCodeSecurityScan", "POST", "/codesecurity/scan/get", nil},
		{"GetCodeSecurityScanConfiguration", "POST", "/codesecurity/scan-configuration/get", nil},
		{"GetConfiguration", "POST", "/configuration/get", h.getConfiguration},
		{"GetDelegatedAdminAccount", "POST", "/delegatedadminaccounts/get", nil},
		{"GetEc2DeepInspectionConfiguration", "POST", "/ec2deepinspectionconfiguration/get", nil},
		{"GetEncryptionKey", "GET", "/encryptionkey/get", nil},
		{"GetFindingsReportStatus", "POST", "/reporting/status/get", h.reports(h.getFindingsReportStatus)},
		{"GetMember", "POST", "/members/get", nil},
		{"GetSbomExport", "POST", "/sbomexport/get", h.reports(h.getSbomExport)},
		{"ListAccountPermissions", "POST", "/accountpermissions/list", nil},
		{"ListCisScanConfigurations", "POST", "/cis/scan-configuration/list", nil},
		{"ListCisScanResultsAggregatedByChecks", "POST", "/cis/scan-result/check/list", nil},
		{"ListCisScanResultsAggregatedByTargetResource", "POST", "/cis/scan-result/resource/list", nil},
		{"ListCisScans", "POST", "/cis/scan/list", nil},
		{"ListCodeSecurityIntegrations", "POST", "/codesecurity/integration/list", nil},
		{"ListCodeSecurityScanConfigurationAssociations", "POST", "/codesecurity/scan-configuration/associations/list", nil},
		{"ListCodeSecurityScanConfigurations", "POST", "/codesecurity/scan-configuration/list", nil},
		{"ListCoverage", "POST", "/coverage/list", h.listCoverage},
		{"ListCoverageStatistics", "POST", "/coverage/statistics/list", h.listCoverageStatistics},
		{"ListDelegatedAdminAccounts", "POST", "/delegatedadminaccounts/list", nil},
		{"ListFilters", "POST", "/filters/list", h.listFilters},
		{"ListFindingAggregations", "POST", "/findings/aggregation/list", h.listFindingAggregations},
		{"ListFindings", "POST", "/findings/list", h.listFindings},
		{"ListMembers", "POST", "/members/list", nil},
		{"ListTagsForResource", "GET", "/tags/{resourceArn}", nil},
		{"ListUsageTotals", "POST", "/usage/list", nil},
		{"ResetEncryptionKey", "PUT", "/encryptionkey/reset", nil},
		{"SearchVulnerabilities", "POST", "/vulnerabilities/search", h.searchVulnerabilities},
		{"SendCisSessionHealth", "PUT", "/cissession/health/send", nil},
		{"SendCisSessionTelemetry", "PUT", "/cissession/telemetry/send", nil},
		{"StartCisSession", "PUT", "/cissession/start", nil},
		{"StartCodeSecurityScan", "POST", "/codesecurity/scan/start", nil},
		{"StopCisSession", "PUT", "/cissession/stop", nil},
		{"TagResource", "POST", "/tags/{resourceArn}", nil},
		{"UntagResource", "DELETE", "/tags/{resourceArn}", nil},
		{"UpdateCisScanConfiguration", "POST", "/cis/scan-configuration/update", nil},
		{"UpdateCodeSecurityIntegration", "POST", "/codesecurity/integration/update", nil},
		{"UpdateCodeSecurityScanConfiguration", "POST", "/codesecurity/scan-configuration/update", nil},
		{"UpdateConfiguration", "POST", "/configuration/update", h.updateConfiguration},
		{"UpdateEc2DeepInspectionConfiguration", "POST", "/ec2deepinspectionconfiguration/update", nil},
		{"UpdateEncryptionKey", "PUT", "/encryptionkey/update", nil},
		{"UpdateFilter", "POST", "/filters/update", h.updateFilter},
		{"UpdateOrganizationConfiguration", "POST", "/organizationconfiguration/update", nil},
		{"UpdateOrgEc2DeepInspectionConfiguration", "POST", "/ec2deepinspectionconfiguration/org/update", nil},
	}
}
