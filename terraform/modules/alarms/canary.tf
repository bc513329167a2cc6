# This region's half of the replication canary (root canary.tf has the table
# and the roles). The writer: an EventBridge Scheduler schedule puts this
# region's item into its replica of the canary table every minute. The
# reader: an EventBridge Pipe reads this replica's stream, keeps the writes
# that replicated in from the other regions and hands them to a log group,
# whose metric filter counts arrivals per sending region
# (GlobalScale/Replication CanaryArrivals, dimension From). The alarm per
# sending region treats missing data as breaching, which works here because
# this is not the AWS/DynamoDB namespace: when replication from a region
# stops, its arrivals stop and the alarm fires.

locals {
  canary_namespace = "GlobalScale/Replication"
}

resource "aws_scheduler_schedule" "canary" {
  #checkov:skip=CKV_AWS_297:The schedule's input is a table name and a region name, nothing secret; a customer-managed key would only add a grant to the writer role.
  count = var.canary == null ? 0 : 1

  region                       = var.region
  name                         = "${var.name_prefix}-replication-canary"
  description                  = "Writes ${local.region}'s replication canary into ${var.canary.table_name} every minute."
  schedule_expression          = "rate(1 minute)"
  schedule_expression_timezone = "UTC"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    # The universal target: DynamoDB's PutItem called by Scheduler itself.
    arn      = "arn:${local.partition}:scheduler:::aws-sdk:dynamodb:putItem"
    role_arn = var.canary.writer_role_arn
    input = jsonencode({
      TableName = var.canary.table_name
      Item = {
        Region    = { S = local.region }
        WrittenAt = { S = "<aws.scheduler.scheduled-time>" }
      }
    })

    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}

resource "aws_cloudwatch_log_group" "canary" {
  count = var.canary == null ? 0 : 1

  region            = var.region
  name              = "/globalscale/${var.name_prefix}/replication-canary"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.topic.arn
}

resource "aws_pipes_pipe" "canary" {
  count = var.canary == null ? 0 : 1

  region      = var.region
  name        = "${var.name_prefix}-replication-canary"
  description = "Canary writes replicated into ${local.region}, to the log group that counts them."
  role_arn    = var.canary.reader_role_arn
  source      = var.canary.stream_arn
  target      = aws_cloudwatch_log_group.canary[0].arn

  source_parameters {
    dynamodb_stream_parameters {
      starting_position = "LATEST"
      batch_size        = 10
    }

    filter_criteria {
      filter {
        # Only what replicated in: this region's own writes prove nothing.
        pattern = jsonencode({
          dynamodb = { Keys = { Region = { S = [{ "anything-but" = [local.region] }] } } }
        })
      }
    }
  }

  target_parameters {
    cloudwatch_logs_parameters {
      log_stream_name = "arrivals"
    }
  }
}

resource "aws_cloudwatch_log_metric_filter" "canary" {
  count = var.canary == null ? 0 : 1

  region         = var.region
  name           = "${var.name_prefix}-replication-canary-arrivals"
  log_group_name = aws_cloudwatch_log_group.canary[0].name
  pattern        = "{ $.dynamodb.Keys.Region.S = \"*\" }"

  metric_transformation {
    namespace = local.canary_namespace
    name      = "CanaryArrivals"
    value     = "1"
    unit      = "Count"
    dimensions = {
      From = "$.dynamodb.Keys.Region.S"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "replication_stalled" {
  for_each = var.canary == null ? toset([]) : toset(var.peer_regions)

  region = var.region

  alarm_name        = "${var.name_prefix}-ReplicationStalled-${each.key}-to-${local.region}"
  alarm_description = "No replication canary write from ${each.key} has arrived in ${local.region} for ${var.canary.missing_periods * 5} minutes: replication from ${each.key} to ${local.region} has stalled (or the canary's writer in ${each.key} stopped). Writes made in ${each.key} since then are not here, and a failover to ${local.region} would lose them."

  namespace   = local.canary_namespace
  metric_name = "CanaryArrivals"
  dimensions = {
    From = each.key
  }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = var.canary.missing_periods
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # The point of the canary: silence is the failure.
  treat_missing_data = "breaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
}
