# Alarms live in the home region beside the topic they notify: CloudWatch
# alarm actions cannot reach an SNS topic in another region. DynamoDB
# publishes ReplicationLatency in the sending region, one series per
# receiving region, so the home region sees replication to every replica.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsInThisAccountPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${var.home_region}:${local.account_id}:alarm:*"]
    }
  }
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]

  # Consumed capacity and single-dimension throttle metrics, one alarm each
  # per table. Usage thresholds are per second; the metric is a one-minute Sum.
  simple_alarms = {
    HighReadUsage = {
      metric      = "ConsumedReadCapacityUnits"
      threshold   = var.high_read_usage_threshold * 60
      description = "consumes more than ${var.high_read_usage_threshold} read capacity units per second"
    }
    HighWriteUsage = {
      metric      = "ConsumedWriteCapacityUnits"
      threshold   = var.high_write_usage_threshold * 60
      description = "consumes more than ${var.high_write_usage_threshold} write capacity units per second"
    }
    ReadThrottleEvents = {
      metric      = "ReadThrottleEvents"
      threshold   = var.throttle_alarm_threshold
      description = "has more than ${var.throttle_alarm_threshold} throttled read events per minute"
    }
    WriteThrottleEvents = {
      metric      = "WriteThrottleEvents"
      threshold   = var.throttle_alarm_threshold
      description = "has more than ${var.throttle_alarm_threshold} throttled write events per minute"
    }
  }

  simple_alarm_instances = merge([
    for table_key, table in local.tables : {
      for alarm, cfg in local.simple_alarms : "${table_key}-${alarm}" => merge(cfg, {
        alarm     = alarm
        table     = table.name
        table_key = table_key
      })
    }
  ]...)

  # ThrottledRequests and SystemErrors exist only per (table, operation), so
  # each alarm sums the operations in var.alarm_operations with metric math.
  per_operation_alarms = {
    ThrottledRequests = {
      threshold   = var.throttle_alarm_threshold
      description = "has more than ${var.throttle_alarm_threshold} throttled requests per minute"
    }
    SystemErrors = {
      threshold   = var.system_errors_threshold
      description = "gets more than ${var.system_errors_threshold} DynamoDB system errors (HTTP 500) per minute"
    }
  }

  per_operation_alarm_instances = merge([
    for table_key, table in local.tables : {
      for alarm, cfg in local.per_operation_alarms : "${table_key}-${alarm}" => merge(cfg, {
        alarm     = alarm
        table     = table.name
        table_key = table_key
      })
    }
  ]...)

  replication_alarm_instances = merge([
    for table_key, table in local.tables : {
      for region in var.replica_regions : "${table_key}-${region}" => {
        table     = table.name
        table_key = table_key
        region    = region
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "table" {
  for_each = local.simple_alarm_instances

  alarm_name        = "${var.name_prefix}-${each.value.table}-${each.value.alarm}"
  alarm_description = "${each.value.table} in ${var.home_region} ${each.value.description}."

  namespace   = "AWS/DynamoDB"
  metric_name = each.value.metric
  dimensions = {
    TableName = aws_dynamodb_table.this[each.value.table_key].name
  }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = var.alarm_evaluation_periods
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

  alarm_name        = "${var.name_prefix}-${each.value.table}-${each.value.alarm}"
  alarm_description = "${each.value.table} in ${var.home_region} ${each.value.description} (summed over ${join(", ", var.alarm_operations)})."

  evaluation_periods  = var.alarm_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "total"
    expression  = "SUM([${join(",", [for i, _ in var.alarm_operations : "op${i}"])}])"
    label       = "${each.value.alarm} (sum of operations)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = var.alarm_operations

    content {
      id          = "op${metric_query.key}"
      return_data = false

      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = each.value.alarm
        period      = 60
        stat        = "Sum"
        dimensions = {
          TableName = aws_dynamodb_table.this[each.value.table_key].name
          Operation = metric_query.value
        }
      }
    }
  }

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "replication_latency" {
  for_each = local.replication_alarm_instances

  alarm_name        = "${var.name_prefix}-${each.value.table}-ReplicationLatency-${each.value.region}"
  alarm_description = "Writes to ${each.value.table} take more than ${var.replication_latency_threshold_ms} ms on average to replicate from ${var.home_region} to ${each.value.region}."

  namespace   = "AWS/DynamoDB"
  metric_name = "ReplicationLatency"
  dimensions = {
    TableName       = aws_dynamodb_table.this[each.value.table_key].name
    ReceivingRegion = each.value.region
  }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = var.alarm_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.replication_latency_threshold_ms
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}
