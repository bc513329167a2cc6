# The alarms a first production review found missing: client errors across
# the account (a credentials or IAM mistake shows here first), slow
# successful requests, and account and table capacity limits.

locals {
  # Account-level metrics (no dimensions), one alarm each per region.
  limit_alarms = {
    AccountReadCapacityLimit  = "AccountProvisionedReadCapacityUtilization"
    AccountWriteCapacityLimit = "AccountProvisionedWriteCapacityUtilization"
    TableReadCapacityLimit    = "MaxProvisionedTableReadCapacityUtilization"
    TableWriteCapacityLimit   = "MaxProvisionedTableWriteCapacityUtilization"
  }
}

resource "aws_cloudwatch_metric_alarm" "user_errors" {
  region = var.region

  alarm_name        = "${var.name_prefix}-UserErrors-${local.region}"
  alarm_description = "More than ${var.settings.user_errors_threshold} DynamoDB requests per minute in ${local.region} were refused as the caller's fault (HTTP 400: AccessDenied, validation, missing tables), account-wide. After a deploy, suspect the sidecar role (/readyz and globalscale_readiness_refusals_total name the error)."

  namespace           = "AWS/DynamoDB"
  metric_name         = "UserErrors"
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = var.settings.alarm_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settings.user_errors_threshold
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}

# The slowest of latency_operations on each table: one metric-math alarm per
# table (at most 10 metrics, which variables.tf enforces).
resource "aws_cloudwatch_metric_alarm" "latency" {
  for_each = var.tables

  region = var.region

  alarm_name        = "${var.name_prefix}-${each.value}-SuccessfulRequestLatency"
  alarm_description = "The average latency of ${join(", ", var.settings.latency_operations)} on ${each.value} in ${local.region} passed ${var.settings.latency_threshold_ms} ms (the slowest operation counts)."

  evaluation_periods  = var.settings.alarm_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settings.latency_threshold_ms
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "slowest"
    expression  = "MAX([${join(",", [for i, _ in var.settings.latency_operations : "op${i}"])}])"
    label       = "SuccessfulRequestLatency (slowest operation)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = var.settings.latency_operations

    content {
      id          = "op${metric_query.key}"
      return_data = false

      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = "SuccessfulRequestLatency"
        period      = 60
        stat        = "Average"
        dimensions = {
          TableName = each.value
          Operation = metric_query.value
        }
      }
    }
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "limits" {
  for_each = local.limit_alarms

  region = var.region

  alarm_name        = "${var.name_prefix}-${each.key}-${local.region}"
  alarm_description = "${each.value} in ${local.region} passed ${var.settings.capacity_utilization_threshold}% of its limit: raise the quota (Service Quotas) before DynamoDB refuses capacity."

  namespace           = "AWS/DynamoDB"
  metric_name         = each.value
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settings.capacity_utilization_threshold
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}
