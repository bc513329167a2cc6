# The catalog table and its audit trail, each a global table (version
# 2019.11.21) with a replica per entry of var.replica_regions. Streams carry
# new and old images because global table replication requires them and the
# audit shipper can read them.
resource "aws_dynamodb_table" "this" {
  for_each = local.tables

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

  # The replicas are modules/table-replica resources below, created after
  # auto scaling; the provider reads them back into this attribute, which
  # must not be managed in two places.
  #
  # Under PROVISIONED, Application Auto Scaling owns the capacities after
  # creation; Terraform resetting them on every apply would fight it.
  lifecycle {
    ignore_changes = [replica, read_capacity, write_capacity]
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
  resource_id        = "table/${aws_dynamodb_table.this[each.value.table].name}"
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

# One replica module per region alias, because a provider cannot be chosen
# per element of a list. Each replica is encrypted with the table key's
# replica in its own region and keeps its own PITR, deletion protection and
# resource policy (audit.tf); none is inherited from the primary. depends_on
# holds every replica back until auto scaling is in place (empty, so no wait,
# under PAY_PER_REQUEST).
locals {
  replicated_tables = {
    for key, table in aws_dynamodb_table.this : key => { name = table.name, arn = table.arn }
  }
}

module "table_replicas_us_east_1" {
  source = "./modules/table-replica"
  count  = contains(var.replica_regions, "us-east-1") ? 1 : 0
  providers = {
    aws = aws.us_east_1
  }

  tables              = local.replicated_tables
  kms_key_arn         = local.table_key_arns["us-east-1"]
  deletion_protection = var.deletion_protection
  resource_policies   = lookup(local.audit_table_policies, "us-east-1", {})

  depends_on = [aws_appautoscaling_policy.capacity]
}

module "table_replicas_us_west_2" {
  source = "./modules/table-replica"
  count  = contains(var.replica_regions, "us-west-2") ? 1 : 0
  providers = {
    aws = aws.us_west_2
  }

  tables              = local.replicated_tables
  kms_key_arn         = local.table_key_arns["us-west-2"]
  deletion_protection = var.deletion_protection
  resource_policies   = lookup(local.audit_table_policies, "us-west-2", {})

  depends_on = [aws_appautoscaling_policy.capacity]
}

module "table_replicas_eu_central_1" {
  source = "./modules/table-replica"
  count  = contains(var.replica_regions, "eu-central-1") ? 1 : 0
  providers = {
    aws = aws.eu_central_1
  }

  tables              = local.replicated_tables
  kms_key_arn         = local.table_key_arns["eu-central-1"]
  deletion_protection = var.deletion_protection
  resource_policies   = lookup(local.audit_table_policies, "eu-central-1", {})

  depends_on = [aws_appautoscaling_policy.capacity]
}

locals {
  table_replicas = {
    "us-east-1"    = module.table_replicas_us_east_1
    "us-west-2"    = module.table_replicas_us_west_2
    "eu-central-1" = module.table_replicas_eu_central_1
  }
}
