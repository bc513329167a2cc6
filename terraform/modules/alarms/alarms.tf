# The alarms of one region. Consumed capacity, throttles and errors are
# published in the region that served the request, so each region watches its
# own replicas. ReplicationLatency is published in the sending region, one
# series per receiving region, so each region watches what it sends.

locals {
  alarm_actions = concat([aws_sns_topic.this.arn], var.settings.alarm_action_arns)

  # Consumed capacity and single-dimension throttle metrics, one alarm each
  # per table. Usage thresholds are per second; the metric is a one-minute Sum.
  simple_alarms = {
    HighReadUsage = {
      metric      = "ConsumedReadCapacityUnits"
      threshold   = var.settings.high_read_usage_threshold * 60
      description = "consumes more than ${var.settings.high_read_usage_threshold} read capacity units per second"
    }
    HighWriteUsage = {
      metric      = "ConsumedWriteCapacityUnits"
      threshold   = var.settings.high_write_usage_threshold * 60
      description = "consumes more than ${var.settings.high_write_usage_threshold} write capacity units per second"
    }
    ReadThrottleEvents = {
      metric      = "ReadThrottleEvents"
      threshold   = var.settings.throttle_alarm_threshold
      description = "has more than ${var.settings.throttle_alarm_threshold} throttled read events per minute"
    }
    WriteThrottleEvents = {
      metric      = "WriteThrottleEvents"
      threshold   = var.settings.throttle_alarm_threshold
      description = "has more than ${var.settings.throttle_alarm_threshold} throttled write events per minute"
    }
  }

  simple_alarm_instances = merge([
    for table_key, table in var.tables : {
      for alarm, cfg in local.simple_alarms : "${table_key}-${alarm}" => merge(cfg, {
        alarm     = alarm
        table     = table
        table_key = table_key
      })
    }
  ]...)

  # ThrottledRequests and SystemErrors exist only per (table, operation), so
  # an alarm sums operations with metric math. One such alarm may reference at
  # most 10 metrics, so the operations are cut into groups of 10, one alarm
  # per group; the first keeps the plain name.
  per_operation_alarms = {
    ThrottledRequests = {
      threshold   = var.settings.throttle_alarm_threshold
      description = "has more than ${var.settings.throttle_alarm_threshold} throttled requests per minute"
    }
    SystemErrors = {
      threshold   = var.settings.system_errors_threshold
      description = "gets more than ${var.settings.system_errors_threshold} DynamoDB system errors (HTTP 500) per minute"
    }
  }

  operation_groups = chunklist(var.settings.alarm_operations, 10)

  per_operation_alarm_instances = merge(flatten([
    for table_key, table in var.tables : [
      for alarm, cfg in local.per_operation_alarms : {
        for i, operations in local.operation_groups :
        (i == 0 ? "${table_key}-${alarm}" : "${table_key}-${alarm}-${i + 1}") => merge(cfg, {
          alarm      = alarm
          name       = i == 0 ? alarm : "${alarm}-${i + 1}"
          table      = table
          table_key  = table_key
          operations = operations
        })
      }
    ]
  ])...)

  # The regions this one's ReplicationLatency alarms watch: none when the
  # tables publish no such metric (multi-Region strong consistency).
  replication_receivers = var.replication_latency_alarms ? var.peer_regions : []

  replication_alarm_instances = merge([
    for table_key, table in var.tables : {
      for region in local.replication_receivers : "${table_key}-${region}" => {
        table     = table
        table_key = table_key
        region    = region
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "table" {
  for_each = local.simple_alarm_instances

  region            = var.region
  alarm_name        = "${var.name_prefix}-${each.value.table}-${each.value.alarm}"
  alarm_description = "${each.value.table} in ${local.region} ${each.value.description}."

  namespace   = "AWS/DynamoDB"
  metric_name = each.value.metric
  dimensions = {
    TableName = each.value.table
  }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = var.settings.alarm_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  # No traffic means no datapoints, which is not a problem.
  treat_missing_data = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "per_operation" {
  for_each = local.per_operation_alarm_instances

  region            = var.region
  alarm_name        = "${var.name_prefix}-${each.value.table}-${each.value.name}"
  alarm_description = "${each.value.table} in ${local.region} ${each.value.description} (summed over ${join(", ", each.value.operations)})."

  evaluation_periods  = var.settings.alarm_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  # No traffic means no datapoints, which is not a problem.
  treat_missing_data = "notBreaching"

  metric_query {
    id          = "total"
    expression  = "SUM([${join(",", [for i, _ in each.value.operations : "op${i}"])}])"
    label       = "${each.value.alarm} (sum of operations)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = each.value.operations

    content {
      id          = "op${metric_query.key}"
      return_data = false

      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = each.value.alarm
        period      = 60
        stat        = "Sum"
        dimensions = {
          TableName = each.value.table
          Operation = metric_query.value
        }
      }
    }
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}

# Slow replication only. A stall stops the metric instead of raising it, and
# CloudWatch documents that alarms on AWS/DynamoDB metrics always ignore
# missing data, whatever treat_missing_data says: the replication canary
# (canary.tf) is what fires on a stall. DynamoDB aggregates
# ReplicationLatency over five minutes, hence the period.
resource "aws_cloudwatch_metric_alarm" "replication_latency" {
  for_each = local.replication_alarm_instances

  region     = var.region
  alarm_name = "${var.name_prefix}-${each.value.table}-ReplicationLatency-${each.value.region}"
  alarm_description = join("", [
    "Writes to ${each.value.table} take more than ${var.settings.replication_latency_threshold_ms} ms on average to replicate from ${local.region} to ${each.value.region}",
    ". A stall publishes nothing and is the ReplicationStalled alarm's to catch.",
  ])

  namespace   = "AWS/DynamoDB"
  metric_name = "ReplicationLatency"
  dimensions = {
    TableName       = each.value.table
    ReceivingRegion = each.value.region
  }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = var.settings.replication_alarm_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settings.replication_latency_threshold_ms
  treat_missing_data  = var.settings.replication_latency_missing_data

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}

output "replication_latency_alarms" {
  description = "Names of this region's ReplicationLatency alarms (none under multi-Region strong consistency)."
  value       = [for alarm in aws_cloudwatch_metric_alarm.replication_latency : alarm.alarm_name]
}
