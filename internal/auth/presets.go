package auth

import "sort"

// Presets are policies named after AWS's managed policies, with their real action lists, so
// that a key made for a CI job reads as it would on AWS. Statements that need a Condition (the
// full-access policy's iam:CreateServiceLinkedRole for replication, Inspector's
// organizations:ListPolicies) are left out: Lading implements neither, and refuses Condition.
// A key records the preset's name, not its text: like an AWS managed policy, a preset is
// what this build of Lading says it is.

// PresetAdministrator is the preset of the bootstrap admin and of keys made before access keys
// had policies: every action on every resource.
const PresetAdministrator = "AdministratorAccess"

// Names of the presets.
const (
	PresetECRReadOnly          = "AmazonEC2ContainerRegistryReadOnly"
	PresetECRPowerUser         = "AmazonEC2ContainerRegistryPowerUser"
	PresetECRFullAccess        = "AmazonEC2ContainerRegistryFullAccess"
	PresetInspectorReadOnly    = "AmazonInspector2ReadOnlyAccess"
	ecrReadActions             = `"ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:GetRepositoryPolicy", "ecr:DescribeRepositories", "ecr:ListImages", "ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview", "ecr:ListTagsForResource", "ecr:DescribeImageScanFindings"`
	presetAdministratorDoc     = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}`
	presetECRReadOnlyDoc       = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [` + ecrReadActions + `], "Resource": "*"}]}`
	presetECRPowerUserDoc      = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [` + ecrReadActions + `, "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"], "Resource": "*"}]}`
	presetECRFullAccessDoc     = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["ecr:*", "cloudtrail:LookupEvents"], "Resource": "*"}]}`
	presetInspectorReadOnlyDoc = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["organizations:ListDelegatedAdministrators", "organizations:ListAWSServiceAccessForOrganization", "organizations:DescribeOrganizationalUnit", "organizations:DescribeAccount", "organizations:DescribeOrganization", "inspector2:BatchGet*", "inspector2:List*", "inspector2:Describe*", "inspector2:Get*", "inspector2:Search*", "codeguru-security:BatchGetFindings", "codeguru-security:GetAccountConfiguration"], "Resource": "*"}]}`
)

// PresetDocument returns the policy document of a preset.
func PresetDocument(name string) (string, bool) {
	switch name {
	case PresetAdministrator:
		return presetAdministratorDoc, true
	case PresetECRReadOnly:
		return presetECRReadOnlyDoc, true
	case PresetECRPowerUser:
		return presetECRPowerUserDoc, true
	case PresetECRFullAccess:
		return presetECRFullAccessDoc, true
	case PresetInspectorReadOnly:
		return presetInspectorReadOnlyDoc, true
	}
	return "", false
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	names := []string{PresetAdministrator, PresetECRReadOnly, PresetECRPowerUser, PresetECRFullAccess, PresetInspectorReadOnly}
	sort.Strings(names)
	return names
}

// ValidKeyName reports whether name can be an access key's name: an IAM user name, 1 to 64 of
// letters, digits and +=,.@_-.
func ValidKeyName(name string) bool {
	return keyName().MatchString(name)
}
