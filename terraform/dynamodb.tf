# The catalog table and its audit trail, each a global table (version
# 2019.11.21) with a replica per entry of var.replica_regions. Streams carry
# new and old images because global table replication requires them and the
# audit shipper can read them.
#
# Two resources, one per consistency mode, because a lifecycle cannot be
# conditional: under EVENTUAL (aws_dynamodb_table.this) the replicas are
# aws_dynamodb_table_replica resources created after auto scaling, so the
# table must ignore its `replica` attribute; under STRONG
# (aws_dynamodb_table.strong) they can only be inline `replica` blocks, the
# one place provider 6 takes consistency_mode and a witness. local.table is
# whichever exists.
resource "aws_dynamodb_table" "this" {
  for_each = local.strong ? {} : local.tables

  name      = each.value.name
  hash_key  = each.value.hash_key
  range_key = each.value.range_key

  billing_mode   = var.billing_mode
  read_capacity  = local.provisioned ? var.read_capacity : null
  write_capacity = local.provisioned ? var.write_capacity : null

  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = each.value.hash_key
    type = "S"
  }

  attribute {
    name = each.value.range_key
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.tables.arn
  }

  # The replicas are aws_dynamodb_table_replica resources below, created
  # after auto scaling; the provider reads them back into this attribute,
  # which must not be managed in two places.
  #
  # Under PROVISIONED, Application Auto Scaling owns the capacities after
  # creation; Terraform resetting them on every apply would fight it.
  lifecycle {
    ignore_changes = [replica, read_capacity, write_capacity]
  }
}

resource "aws_dynamodb_table" "strong" {
  for_each = local.strong ? local.tables : {}

  name      = each.value.name
  hash_key  = each.value.hash_key
  range_key = each.value.range_key

  billing_mode   = var.billing_mode
  read_capacity  = local.provisioned ? var.read_capacity : null
  write_capacity = local.provisioned ? var.write_capacity : null

  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = each.value.hash_key
    type = "S"
  }

  attribute {
    name = each.value.range_key
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.tables.arn
  }

  # Multi-Region strong consistency: every replica inline, each encrypted
  # with the table key's replica in its region; PAY_PER_REQUEST only
  # (modules/topology), so there is no auto scaling to wait for.
  dynamic "replica" {
    for_each = var.replica_regions

    content {
      region_name                 = replica.value
      kms_key_arn                 = local.table_key_arns[replica.value]
      point_in_time_recovery      = true
      deletion_protection_enabled = var.deletion_protection
      propagate_tags              = true
      consistency_mode            = "STRONG"
    }
  }

  dynamic "global_table_witness" {
    for_each = var.witness_region == null ? [] : [var.witness_region]

    content {
      region_name = global_table_witness.value
    }
  }

  timeouts {
    create = "2h"
    update = "2h"
  }
}

# Global tables on provisioned capacity must auto scale writes (DynamoDB
# rejects replicas otherwise); reads scale too so the floors and ceilings
# mean the same for both.
locals {
  scaling_targets = merge([
    for key, table in local.tables : {
      "${key}-read" = {
        table     = key
        dimension = "dynamodb:table:ReadCapacityUnits"
        metric    = "DynamoDBReadCapacityUtilization"
        min       = var.read_capacity
        max       = var.max_read_capacity
      }
      "${key}-write" = {
        table     = key
        dimension = "dynamodb:table:WriteCapacityUnits"
        metric    = "DynamoDBWriteCapacityUtilization"
        min       = var.write_capacity
        max       = var.max_write_capacity
      }
    }
  ]...)

  scaling = { for k, v in local.scaling_targets : k => v if local.provisioned }
}

resource "aws_appautoscaling_target" "capacity" {
  for_each = local.scaling

  service_namespace  = "dynamodb"
  resource_id        = "table/${local.table[each.value.table].name}"
  scalable_dimension = each.value.dimension
  min_capacity       = each.value.min
  max_capacity       = each.value.max
}

resource "aws_appautoscaling_policy" "capacity" {
  for_each = local.scaling

  name               = "${var.name_prefix}-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.capacity[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.capacity[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.capacity[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = var.autoscaling_target_utilization

    predefined_metric_specification {
      predefined_metric_type = each.value.metric
    }
  }
}

locals {
  # The primary of each table, whichever consistency mode made it.
  table = merge(aws_dynamodb_table.this, aws_dynamodb_table.strong)

  # Every (table, replica region) pair, by "<table key>.<region>".
  replica_pairs = {
    for pair in setproduct(keys(local.tables), var.replica_regions) :
    "${pair[0]}.${pair[1]}" => { table = pair[0], region = pair[1] }
  }
}

# EVENTUAL: a replica per table and region, each in its region, encrypted
# with the table key's replica there, with its own PITR and deletion
# protection (none is inherited from the primary). depends_on holds every
# replica back until auto scaling is in place (empty, so no wait, under
# PAY_PER_REQUEST): DynamoDB refuses a replica of a PROVISIONED table whose
# writes are not auto scaled (hashicorp/terraform-provider-aws#13097).
resource "aws_dynamodb_table_replica" "this" {
  for_each = local.strong ? {} : local.replica_pairs

  region                      = each.value.region
  global_table_arn            = aws_dynamodb_table.this[each.value.table].arn
  kms_key_arn                 = local.table_key_arns[each.value.region]
  point_in_time_recovery      = true
  deletion_protection_enabled = var.deletion_protection

  # DynamoDB copies every existing item before a replica is ACTIVE; the
  # provider's 30 minutes are short for a catalog that already holds data.
  timeouts {
    create = "2h"
  }

  depends_on = [aws_appautoscaling_policy.capacity]
}

# The replica resource does not export its stream; the table as seen from
# its region does.
data "aws_dynamodb_table" "replica" {
  for_each = local.strong ? {} : local.replica_pairs

  region = each.value.region
  name   = local.tables[each.value.table].name

  depends_on = [aws_dynamodb_table_replica.this]
}

locals {
  # Table key => region => the replica's ARN and stream ARN, home region
  # excluded, under either mode.
  replicas = {
    for key in keys(local.tables) : key => merge(
      {
        for pair_key, pair in local.replica_pairs : pair.region => {
          arn        = aws_dynamodb_table_replica.this[pair_key].arn
          stream_arn = data.aws_dynamodb_table.replica[pair_key].stream_arn
        } if pair.table == key && !local.strong
      },
      {
        for r in(local.strong ? aws_dynamodb_table.strong[key].replica : []) : r.region_name => {
          arn        = r.arn
          stream_arn = r.stream_arn
        }
      },
    )
  }
}

# Before provider 6: a module copy per replica region. These keep the default
# regions' replicas; other regions add blocks of the same shape.
moved {
  from = module.table_replicas_us_east_1[0].aws_dynamodb_table_replica.this["catalog"]
  to   = aws_dynamodb_table_replica.this["catalog.us-east-1"]
}

moved {
  from = module.table_replicas_us_east_1[0].aws_dynamodb_table_replica.this["audit"]
  to   = aws_dynamodb_table_replica.this["audit.us-east-1"]
}

moved {
  from = module.table_replicas_us_west_2[0].aws_dynamodb_table_replica.this["catalog"]
  to   = aws_dynamodb_table_replica.this["catalog.us-west-2"]
}

moved {
  from = module.table_replicas_us_west_2[0].aws_dynamodb_table_replica.this["audit"]
  to   = aws_dynamodb_table_replica.this["audit.us-west-2"]
}

moved {
  from = module.table_replicas_eu_central_1[0].aws_dynamodb_table_replica.this["catalog"]
  to   = aws_dynamodb_table_replica.this["catalog.eu-central-1"]
}

moved {
  from = module.table_replicas_eu_central_1[0].aws_dynamodb_table_replica.this["audit"]
  to   = aws_dynamodb_table_replica.this["audit.eu-central-1"]
}

moved {
  from = module.table_replicas_us_west_2[0].aws_dynamodb_resource_policy.this["audit"]
  to   = aws_dynamodb_resource_policy.audit_replica["us-west-2"]
}

moved {
  from = module.table_replicas_eu_central_1[0].aws_dynamodb_resource_policy.this["audit"]
  to   = aws_dynamodb_resource_policy.audit_replica["eu-central-1"]
}

moved {
  from = module.table_replicas_us_east_1[0].aws_dynamodb_resource_policy.this["audit"]
  to   = aws_dynamodb_resource_policy.audit_replica["us-east-1"]
}
