# The role .github/workflows/aws.yml assumes through GitHub's OIDC provider:
# no long-lived keys in the repository. Only jobs of ci_github_repository
# running in the protected environment ci_github_environment may assume it
# (the token's `sub` names the environment). What it may do:
#
# - assume the sidecar role (iam.tf trusts it), so that the load run signs
#   with that role and its policy is what AWS judges: a missing action fails
#   the run, not the first production deploy;
# - read, and delete from, this environment's audit table, to read back the
#   smoke example's audit record and remove the records the run left. Meant
#   for a CI environment of its own (examples/ci.tfvars:
#   audit_resource_policy = false); in an environment with the resource
#   policy the deletes are denied, as they must be.
#
# Nothing on the catalog table: everything the workflow does there (through
# the sidecar, and the load run's calls straight to each region with their
# clean-up, scripts/aws-load --direct-credentials) signs with the sidecar
# role, whose policy grants exactly that. scripts/check-infra fails if a
# workflow step would use this role on a table it is not granted here.

locals {
  ci = var.ci_github_repository != null

  github_oidc_url = "token.actions.githubusercontent.com"
  github_oidc_arn = coalesce(
    var.ci_github_oidc_provider_arn,
    one(aws_iam_openid_connect_provider.github[*].arn),
    "none",
  )
}

resource "aws_iam_openid_connect_provider" "github" {
  count = local.ci && var.ci_github_oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.github_oidc_url}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "ci_trust" {
  count = local.ci ? 1 : 0

  statement {
    sid     = "GitHubActionsFromTheProtectedEnvironment"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_url}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_url}:sub"
      values   = ["repo:${coalesce(var.ci_github_repository, "none/none")}:environment:${var.ci_github_environment}"]
    }
  }
}

resource "aws_iam_role" "ci" {
  count = local.ci ? 1 : 0

  name                 = "${var.name_prefix}-ci"
  description          = "GlobalScale CI (.github/workflows/aws.yml): assumes the sidecar role for the load run and cleans up its audit records."
  assume_role_policy   = data.aws_iam_policy_document.ci_trust[0].json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ci" {
  count = local.ci ? 1 : 0

  statement {
    sid       = "AssumeTheSidecarRole"
    actions   = ["sts:AssumeRole", "sts:TagSession"]
    resources = [aws_iam_role.sidecar.arn]
  }

  statement {
    sid       = "CleanUpTheLoadRunsAuditRecords"
    actions   = ["dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable"]
    resources = local.audit_arns
  }

  # The key is shared with the catalog table; the encryption context keeps
  # these rights to the audit table, the only one this role touches (as the
  # sidecar's and the auditor's statements in iam.tf do).
  statement {
    sid       = "UseTheAuditTableKeyThroughDynamoDB"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = values(local.table_key_arns)

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.all_regions : "dynamodb.${region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:dynamodb:tableName"
      values   = [local.audit_name]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:dynamodb:subscriberId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "ci" {
  count = local.ci ? 1 : 0

  name   = "load-run"
  role   = aws_iam_role.ci[0].id
  policy = data.aws_iam_policy_document.ci[0].json
}
