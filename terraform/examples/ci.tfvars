# A CI environment of its own for .github/workflows/aws.yml: its own tables,
# names and roles, deletable records (no audit resource policy), and a GitHub
# OIDC role for one repository's protected environment "aws". Apply with its
# own state: terraform apply -var-file=examples/ci.tfvars
home_region     = "us-east-1"
replica_regions = ["us-west-2"]

catalog_table_name  = "GlobalScaleCI"
name_prefix         = "globalscale-ci"
deletion_protection = false

# The CI deletes the audit records its load run left; production keeps the
# policy that forbids exactly that.
audit_resource_policy = false

# The canary costs about USD 5 a month for two regions, most of it the
# pipe's stream polling (README.md, Cost); CI needs none.
replication_canary = false

ci_github_repository  = "example-org/globalscale"
ci_github_environment = "aws"

# The sidecar role's trust needs at least one cluster; CI assumes it through
# the statement ci.tf adds.
eks_clusters = [
  {
    oidc_provider_arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE1"
    oidc_issuer_url   = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE1"
  },
]
