package store

// AnnotationGeneratedSBOM marks the SBOM referrers Lading attaches to scanned images (value
// "true"). Such a manifest is replaced by the next scan and deleted with its subject; its
// push and delete write no events, lifecycle policies do not count it and ECR's ListImages and
// DescribeImages do not list it.
const AnnotationGeneratedSBOM = "dev.lading.sbom.generated"
