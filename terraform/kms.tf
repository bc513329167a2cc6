# One multi-region key encrypts both tables everywhere: each replica region
# gets a replica of it (same key material, same key id), which is what a
# global table replica must be encrypted with when the table uses a
# customer-managed key. Rotation is set on the primary and follows to replicas.
resource "aws_kms_key" "tables" {
  description             = "GlobalScale: encryption of the ${var.catalog_table_name} global tables"
  multi_region            = true
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  is_enabled              = true
  policy                  = data.aws_iam_policy_document.tables_key.json
}

resource "aws_kms_alias" "tables" {
  name          = "alias/${var.name_prefix}-tables"
  target_key_id = aws_kms_key.tables.key_id
}

module "table_key_us_east_1" {
  source = "./modules/kms-replica"
  count  = contains(var.replica_regions, "us-east-1") ? 1 : 0
  providers = {
    aws = aws.us_east_1
  }

  primary_key_arn         = aws_kms_key.tables.arn
  policy                  = data.aws_iam_policy_document.tables_key.json
  description             = "GlobalScale: replica of the ${var.catalog_table_name} table key"
  alias_name              = "alias/${var.name_prefix}-tables"
  deletion_window_in_days = var.kms_deletion_window_days
}

module "table_key_us_west_2" {
  source = "./modules/kms-replica"
  count  = contains(var.replica_regions, "us-west-2") ? 1 : 0
  providers = {
    aws = aws.us_west_2
  }

  primary_key_arn         = aws_kms_key.tables.arn
  policy                  = data.aws_iam_policy_document.tables_key.json
  description             = "GlobalScale: replica of the ${var.catalog_table_name} table key"
  alias_name              = "alias/${var.name_prefix}-tables"
  deletion_window_in_days = var.kms_deletion_window_days
}

module "table_key_eu_central_1" {
  source = "./modules/kms-replica"
  count  = contains(var.replica_regions, "eu-central-1") ? 1 : 0
  providers = {
    aws = aws.eu_central_1
  }

  primary_key_arn         = aws_kms_key.tables.arn
  policy                  = data.aws_iam_policy_document.tables_key.json
  description             = "GlobalScale: replica of the ${var.catalog_table_name} table key"
  alias_name              = "alias/${var.name_prefix}-tables"
  deletion_window_in_days = var.kms_deletion_window_days
}

locals {
  table_key_replicas = {
    "us-east-1"    = module.table_key_us_east_1
    "us-west-2"    = module.table_key_us_west_2
    "eu-central-1" = module.table_key_eu_central_1
  }

  # Region => ARN of the table key in that region, home region included.
  table_key_arns = merge(
    { (var.home_region) = aws_kms_key.tables.arn },
    { for region, m in local.table_key_replicas : region => m[0].arn if length(m) > 0 },
  )
}

# The account-root statement is the KMS default: it lets IAM policies (the
# sidecar's, Terraform's) grant use of the key, so the key policy itself
# names no workload. Without it the key could become unmanageable.
data "aws_iam_policy_document" "tables_key" {
  #checkov:skip=CKV_AWS_109:In a key policy Resource "*" means only the key the policy is attached to; the account-root statement is the KMS default that delegates to IAM.
  #checkov:skip=CKV_AWS_111:Same statement: key policy scope is the key itself, not every resource.
  #checkov:skip=CKV_AWS_356:Key policies must use Resource "*", which refers to the key they are attached to.
  statement {
    sid       = "AccountRootManagesKeyAndDelegatesToIam"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

# Alarm notifications are encrypted at rest too; CloudWatch must be able to
# use this key to publish to the topic, which the default key does not allow.
resource "aws_kms_key" "alarms" {
  description             = "GlobalScale: encryption of the alarm SNS topic"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  is_enabled              = true
  policy                  = data.aws_iam_policy_document.alarms_key.json
}

resource "aws_kms_alias" "alarms" {
  name          = "alias/${var.name_prefix}-alarms"
  target_key_id = aws_kms_key.alarms.key_id
}

data "aws_iam_policy_document" "alarms_key" {
  #checkov:skip=CKV_AWS_109:In a key policy Resource "*" means only the key the policy is attached to; the account-root statement is the KMS default that delegates to IAM.
  #checkov:skip=CKV_AWS_111:Same statement: key policy scope is the key itself, not every resource.
  #checkov:skip=CKV_AWS_356:Key policies must use Resource "*", which refers to the key they are attached to.
  statement {
    sid       = "AccountRootManagesKeyAndDelegatesToIam"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
