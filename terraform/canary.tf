# The replication canary: a write per region each minute into a small global
# table of its own, and in every other region an alarm when those writes stop
# arriving (modules/alarms/canary.tf). ReplicationLatency cannot do this: a
# stalled replication publishes nothing, and alarms on AWS/DynamoDB metrics
# ignore missing data whatever they are told. The canary's metric lives in
# its own namespace, where missing data can be breaching.
#
# Its own table, not the catalog: an item outside the sidecar's key prefix
# would show up in applications' Scans. It shares the catalog's key (and so
# its replicas' keys), so a replica that loses access to the key stops the
# canary as it stops the catalog. One item per region, overwritten each
# minute. EVENTUAL only: under STRONG a write that cannot replicate fails,
# which SystemErrors and the sidecar's own alerts see.

locals {
  canary = var.replication_canary && !local.strong

  canary_name = "${var.catalog_table_name}-canary"
  canary_arns = [
    for region in local.all_regions :
    "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.canary_name}"
  ]

  # Region => what that region's alarms module needs of the canary; null
  # without one.
  canary_in = {
    for region in local.all_regions : region => local.canary ? {
      table_name      = local.canary_name
      table_arn       = "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.canary_name}"
      stream_arn      = region == var.home_region ? aws_dynamodb_table.canary[0].stream_arn : one([for r in aws_dynamodb_table.canary[0].replica : r.stream_arn if r.region_name == region])
      writer_role_arn = aws_iam_role.canary_writer[0].arn
      reader_role_arn = aws_iam_role.canary_reader[0].arn
      missing_periods = var.replication_canary_missing_minutes / 5
    } : null
  }
}

resource "aws_dynamodb_table" "canary" {
  #checkov:skip=CKV_AWS_28:Point-in-time recovery of one item per region, overwritten every minute, recovers nothing.
  count = local.canary ? 1 : 0

  name         = local.canary_name
  hash_key     = "Region"
  billing_mode = "PAY_PER_REQUEST"

  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "Region"
    type = "S"
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.tables.arn
  }

  # On demand and nothing to auto scale, so the replicas can be inline.
  dynamic "replica" {
    for_each = var.replica_regions

    content {
      region_name    = replica.value
      kms_key_arn    = local.table_key_arns[replica.value]
      propagate_tags = true
    }
  }
}

data "aws_iam_policy_document" "canary_trust" {
  for_each = local.canary ? toset(["scheduler", "pipes"]) : toset([])

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The writer: EventBridge Scheduler's PutItem into each region's replica.
resource "aws_iam_role" "canary_writer" {
  count = local.canary ? 1 : 0

  name                 = "${var.name_prefix}-canary-writer"
  description          = "GlobalScale replication canary: EventBridge Scheduler writes one item per region into ${local.canary_name}."
  assume_role_policy   = data.aws_iam_policy_document.canary_trust["scheduler"].json
  permissions_boundary = var.permissions_boundary_arn
}

data "aws_iam_policy_document" "canary_writer" {
  count = local.canary ? 1 : 0

  statement {
    sid       = "PutTheCanary"
    actions   = ["dynamodb:PutItem"]
    resources = local.canary_arns
  }

  statement {
    sid       = "UseTheTableKeyThroughDynamoDB"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"]
    resources = values(local.table_key_arns)

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.all_regions : "dynamodb.${region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "canary_writer" {
  count = local.canary ? 1 : 0

  name   = "put-canary"
  role   = aws_iam_role.canary_writer[0].id
  policy = data.aws_iam_policy_document.canary_writer[0].json
}

# The reader: each region's EventBridge Pipe on its replica's stream, into the
# region's canary log group.
resource "aws_iam_role" "canary_reader" {
  count = local.canary ? 1 : 0

  name                 = "${var.name_prefix}-canary-reader"
  description          = "GlobalScale replication canary: EventBridge Pipes read ${local.canary_name}'s streams into each region's canary log group."
  assume_role_policy   = data.aws_iam_policy_document.canary_trust["pipes"].json
  permissions_boundary = var.permissions_boundary_arn
}

data "aws_iam_policy_document" "canary_reader" {
  count = local.canary ? 1 : 0

  statement {
    sid       = "ReadTheCanaryStreams"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    resources = [for arn in local.canary_arns : "${arn}/stream/*"]
  }

  statement {
    sid       = "DecryptTheStreamRecords"
    actions   = ["kms:Decrypt"]
    resources = values(local.table_key_arns)

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.all_regions : "dynamodb.${region}.amazonaws.com"]
    }
  }

  statement {
    sid     = "WriteArrivals"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [
      for region in local.all_regions :
      "arn:${local.partition}:logs:${region}:${local.account_id}:log-group:/globalscale/${var.name_prefix}/replication-canary:*"
    ]
  }
}

resource "aws_iam_role_policy" "canary_reader" {
  count = local.canary ? 1 : 0

  name   = "read-canary"
  role   = aws_iam_role.canary_reader[0].id
  policy = data.aws_iam_policy_document.canary_reader[0].json
}
