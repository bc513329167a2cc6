# Pass with -var-file=examples/three-regions.tfvars, or copy to terraform.tfvars and edit.
home_region     = "us-east-1"
replica_regions = ["us-west-2", "eu-central-1"]

eks_clusters = [
  {
    oidc_provider_arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE1"
    oidc_issuer_url   = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE1"
  },
  {
    oidc_provider_arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE2"
    oidc_issuer_url   = "https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE2"
  },
  {
    oidc_provider_arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/EXAMPLE3"
    oidc_issuer_url   = "https://oidc.eks.eu-central-1.amazonaws.com/id/EXAMPLE3"
  },
]

alarm_emails = ["oncall@example.com"]

# One prefix per environment that shares the account (IAM role and policy,
# KMS aliases, topics and alarms are named from it). The default keeps the
# names of earlier releases.
# name_prefix = "globalscale"

# sidecar_table_actions: the IAM actions of the calls applications make
# through the sidecar. README.md, "What the sidecar may call", has the
# default and an example that adds UpdateTimeToLive.

# The sidecar forwards the DynamoDB Streams API with its role, and a policy of
# its own (<name_prefix>-sidecar-streams) lets it read the catalog's streams,
# never the audit table's. With no stream reader behind the sidecar, the role
# can do without it:
# sidecar_stream_reads = false
