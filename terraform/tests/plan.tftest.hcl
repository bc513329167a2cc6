# Plans of the whole configuration against a mocked AWS provider: no account,
# no credentials, nothing created. What they prove is what a plan decides:
# which resources exist for a region list and a consistency mode, in which
# region each is created, and which inputs are refused. Run with
# `terraform init -backend=false && terraform test` in terraform/ (the
# `terraform` job of .github/workflows/ci.yml). The provider-free checks of
# the region list and MRSC are in modules/topology/tests, which
# scripts/check-infra runs offline too.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
      arn        = "arn:aws:sts::111122223333:assumed-role/terraform/ci"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_iam_session_context" {
    defaults = {
      issuer_arn = "arn:aws:iam::111122223333:role/terraform"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json          = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
      minified_json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  eks_clusters = [{
    oidc_provider_arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
    oidc_issuer_url   = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
  }]
}

run "default_three_regions" {
  command = plan

  assert {
    condition     = length(aws_dynamodb_table.this) == 2 && length(aws_dynamodb_table.strong) == 0
    error_message = "EVENTUAL: the catalog and audit tables, with separate replicas"
  }

  assert {
    condition     = toset(keys(aws_dynamodb_table_replica.this)) == toset(["catalog.us-west-2", "catalog.eu-central-1", "audit.us-west-2", "audit.eu-central-1"])
    error_message = "a replica of each table in each replica region"
  }

  assert {
    condition     = aws_dynamodb_table_replica.this["audit.eu-central-1"].region == "eu-central-1"
    error_message = "each replica is created in its own region"
  }

  assert {
    condition     = toset(keys(module.alarms)) == toset(["us-east-1", "us-west-2", "eu-central-1"])
    error_message = "alarms in every region"
  }

  assert {
    condition     = length(aws_dynamodb_table.canary) == 1 && length(aws_iam_role.canary_writer) == 1
    error_message = "the replication canary is on by default"
  }

  assert {
    condition     = length(module.alarms["us-east-1"].replication_latency_alarms) == 4
    error_message = "ReplicationLatency alarms for each table towards each of the two other regions"
  }
}

run "any_regions_from_the_list" {
  command = plan

  variables {
    home_region     = "ap-southeast-1"
    replica_regions = ["ap-southeast-2", "ap-south-1", "sa-east-1"]
  }

  assert {
    condition     = length(aws_dynamodb_table_replica.this) == 6 && length(aws_kms_replica_key.tables) == 3
    error_message = "replicas and key replicas for every listed region, no code per region"
  }

  assert {
    condition     = aws_kms_replica_key.tables["sa-east-1"].region == "sa-east-1"
    error_message = "the key replica lives in its region"
  }

  assert {
    condition     = length(module.alarms) == 4
    error_message = "alarms in each of the four regions"
  }
}

run "strong_three_us_regions" {
  command = plan

  variables {
    home_region      = "us-east-1"
    replica_regions  = ["us-east-2", "us-west-2"]
    consistency_mode = "STRONG"
  }

  assert {
    condition     = length(aws_dynamodb_table.strong) == 2 && length(aws_dynamodb_table_replica.this) == 0
    error_message = "STRONG: inline replicas only"
  }

  assert {
    condition     = alltrue([for r in aws_dynamodb_table.strong["catalog"].replica : r.consistency_mode == "STRONG"])
    error_message = "every replica strongly consistent"
  }

  assert {
    condition     = length(aws_dynamodb_table.canary) == 0
    error_message = "no canary under STRONG: a write that cannot replicate fails"
  }

  assert {
    condition     = alltrue([for region in module.alarms : length(region.replication_latency_alarms) == 0])
    error_message = "no ReplicationLatency alarms under STRONG: MRSC tables publish no such metric"
  }
}

run "strong_two_regions_and_a_witness" {
  command = plan

  variables {
    home_region      = "eu-west-1"
    replica_regions  = ["eu-central-1"]
    consistency_mode = "STRONG"
    witness_region   = "eu-west-2"
  }

  assert {
    condition     = one(aws_dynamodb_table.strong["audit"].global_table_witness).region_name == "eu-west-2"
    error_message = "the witness is declared on the table"
  }
}

# The refusals (malformed names, MRSC across region sets, a witness under
# EVENTUAL, ...) fail in modules/topology's variables, which a root test
# cannot name in expect_failures: modules/topology/tests has them.

run "non_email_routing" {
  command = plan

  variables {
    alarm_subscriptions = [{ protocol = "https", endpoint = "https://events.pagerduty.com/integration/EXAMPLE/enqueue" }]
    alarm_action_arns   = { "us-west-2" = ["arn:aws:sns:us-west-2:111122223333:chatbot"] }
  }

  assert {
    condition     = length(module.alarms["eu-central-1"].subscriptions) == 1
    error_message = "every region's topic gets the HTTPS subscriber"
  }
}

# The sidecar forwards the DynamoDB Streams API with its role (iam.tf,
# "sidecar_streams"): the catalog's streams in every region, never the audit
# table's. The statements are the policy documents' arguments, known at plan;
# the KMS statements' resources (key ARNs) are not, so each check picks its
# statements by actions or sid before it reads their resources.
run "sidecar_reads_the_catalog_streams_not_the_audit_stream" {
  command = plan

  assert {
    condition     = length(aws_iam_policy.sidecar_streams) == 1 && length(aws_iam_role_policy_attachment.sidecar_streams) == 1
    error_message = "the stream reads are a policy of their own, attached to the sidecar role by default"
  }

  assert {
    condition = toset(one([
      for s in data.aws_iam_policy_document.sidecar_streams.statement : s.resources if s.sid == "CatalogStreamRead"
      ])) == toset([
      "arn:aws:dynamodb:us-east-1:111122223333:table/GlobalCatalog/stream/*",
      "arn:aws:dynamodb:us-west-2:111122223333:table/GlobalCatalog/stream/*",
      "arn:aws:dynamodb:eu-central-1:111122223333:table/GlobalCatalog/stream/*",
    ])
    error_message = "the sidecar may read the catalog's stream in each region"
  }

  assert {
    condition = toset(one([
      for s in data.aws_iam_policy_document.sidecar_streams.statement : s.actions if s.sid == "CatalogStreamRead"
    ])) == toset(["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"])
    error_message = "the stream statement grants the three stream reads that take a stream ARN"
  }

  assert {
    condition = alltrue(flatten([
      for s in concat(data.aws_iam_policy_document.sidecar.statement, data.aws_iam_policy_document.sidecar_streams.statement) : [
        for r in s.resources : !strcontains(r, "table/GlobalCatalog-audit/")
      ] if s.effect == "Allow" && length(setintersection(s.actions, ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"])) > 0
    ]))
    error_message = "no statement allows a stream read on anything under the audit table"
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.sidecar.statement :
      s.effect == "Deny" &&
      length(setsubtract(["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"], s.actions)) == 0 &&
      contains(s.resources, "arn:aws:dynamodb:*:111122223333:table/GlobalCatalog-audit/*")
      if s.sid == "AuditNeverRead"
    ])
    error_message = "an explicit Deny keeps the stream reads off the audit table's streams in every region"
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.sidecar_streams.statement :
      s.effect == "Allow" && toset(s.actions) == toset(["dynamodb:ListStreams"]) && toset(s.resources) == toset(["*"])
    ])
    error_message = "ListStreams takes no resource type, so it is allowed on \"*\""
  }

  assert {
    condition = !anytrue([
      for s in data.aws_iam_policy_document.sidecar.statement :
      length(setintersection(s.actions, ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords", "dynamodb:ListStreams"])) > 0
      if s.effect == "Allow"
    ])
    error_message = "the sidecar policy itself allows no stream action: sidecar_stream_reads = false must take them all away"
  }
}

run "sidecar_stream_reads_off" {
  command = plan

  variables {
    sidecar_stream_reads = false
  }

  assert {
    condition     = length(aws_iam_policy.sidecar_streams) == 0 && length(aws_iam_role_policy_attachment.sidecar_streams) == 0
    error_message = "no stream policy when sidecar_stream_reads is false"
  }
}

run "stream_actions_are_not_table_actions" {
  command = plan

  variables {
    sidecar_table_actions = ["dynamodb:GetItem", "dynamodb:GetRecords"]
  }

  expect_failures = [var.sidecar_table_actions]
}

run "ci_role_for_one_repository_environment" {
  command = plan

  variables {
    ci_github_repository = "example-org/globalscale"
  }

  assert {
    condition     = length(aws_iam_role.ci) == 1 && length(aws_iam_openid_connect_provider.github) == 1
    error_message = "a CI role and GitHub's OIDC provider"
  }
}

run "no_ci_role_by_default" {
  command = plan

  assert {
    condition     = length(aws_iam_role.ci) == 0 && length(aws_iam_openid_connect_provider.github) == 0
    error_message = "no CI role unless a repository is named"
  }
}
