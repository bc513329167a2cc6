# One multi-region key encrypts both tables everywhere: each replica region
# gets a replica of it (same key material, same key id), which is what a
# global table replica must be encrypted with when the table uses a
# customer-managed key. Rotation is set on the primary and follows to replicas.
# The alarm topics have keys of their own, in modules/alarms.
resource "aws_kms_key" "tables" {
  description             = "GlobalScale: encryption of the ${var.catalog_table_name} global tables"
  multi_region            = true
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  is_enabled              = true
  policy                  = data.aws_iam_policy_document.tables_key.json

  # Every replica, backup and export of both tables is readable only while
  # this key (or its replicas) exists, so neither a destroy nor a
  # replacement forced by a changed argument may happen as a side effect of
  # an apply. Removing this takes an edit; see README.md, Destroy.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "tables" {
  name          = "alias/${var.name_prefix}-tables"
  target_key_id = aws_kms_key.tables.key_id
}

# A replica of the key in every replica region (same key material and id),
# which is what a replica encrypted with a customer-managed key needs. Each
# is its own resource in its region (provider 6's `region` argument), so the
# region list is all it takes to add one.
resource "aws_kms_replica_key" "tables" {
  for_each = toset(var.replica_regions)

  region                  = each.key
  primary_key_arn         = aws_kms_key.tables.arn
  description             = "GlobalScale: replica of the ${var.catalog_table_name} table key"
  policy                  = data.aws_iam_policy_document.tables_key.json
  deletion_window_in_days = var.kms_deletion_window_days
  enabled                 = true

  # The table replica in this region, its PITR backups and its exports are
  # readable only with this key; see the primary's lifecycle above.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "tables_replica" {
  for_each = toset(var.replica_regions)

  region        = each.key
  name          = "alias/${var.name_prefix}-tables"
  target_key_id = aws_kms_replica_key.tables[each.key].key_id
}

locals {
  # Region => ARN of the table key in that region, home region included.
  table_key_arns = merge(
    { (var.home_region) = aws_kms_key.tables.arn },
    { for region, key in aws_kms_replica_key.tables : region => key.arn },
  )
}

# Before provider 6, each replica region had a module copy behind a provider
# alias. These keep the default regions' keys (and so their replicas) in
# place; a deployment with other regions adds blocks of the same shape.
moved {
  from = module.table_key_us_east_1[0].aws_kms_replica_key.this
  to   = aws_kms_replica_key.tables["us-east-1"]
}

moved {
  from = module.table_key_us_west_2[0].aws_kms_replica_key.this
  to   = aws_kms_replica_key.tables["us-west-2"]
}

moved {
  from = module.table_key_eu_central_1[0].aws_kms_replica_key.this
  to   = aws_kms_replica_key.tables["eu-central-1"]
}

moved {
  from = module.table_key_us_east_1[0].aws_kms_alias.this
  to   = aws_kms_alias.tables_replica["us-east-1"]
}

moved {
  from = module.table_key_us_west_2[0].aws_kms_alias.this
  to   = aws_kms_alias.tables_replica["us-west-2"]
}

moved {
  from = module.table_key_eu_central_1[0].aws_kms_alias.this
  to   = aws_kms_alias.tables_replica["eu-central-1"]
}

# The account-root statement is the KMS default: it lets IAM policies (the
# sidecar's, the auditor's, Terraform's) grant use of the key, so the key
# policy itself names no workload and the auditor role needs no statement
# here; iam.tf narrows each role to its tables by encryption context. Without
# it the key could become unmanageable.
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
