# Every region that holds a replica gets its own alarms, topic and topic key
# (modules/alarms): throttles and errors are published where the request was
# served, and an alarm can only notify a topic in its own region. One module
# instance per region of the list, each creating its resources in its region
# (provider 6's `region` argument).

locals {
  alarm_tables = { for key, table in local.table : key => table.name }

  alarm_settings = {
    high_read_usage_threshold            = var.high_read_usage_threshold
    high_write_usage_threshold           = var.high_write_usage_threshold
    throttle_alarm_threshold             = var.throttle_alarm_threshold
    system_errors_threshold              = var.system_errors_threshold
    replication_latency_threshold_ms     = var.replication_latency_threshold_ms
    replication_latency_missing_data     = var.replication_latency_missing_data
    replication_alarm_evaluation_periods = var.replication_alarm_evaluation_periods
    alarm_evaluation_periods             = var.alarm_evaluation_periods
    alarm_operations                     = var.alarm_operations
    alarm_emails                         = var.alarm_emails
    alarm_subscriptions                  = var.alarm_subscriptions
    user_errors_threshold                = var.user_errors_threshold
    latency_threshold_ms                 = var.latency_threshold_ms
    latency_operations                   = var.latency_operations
    capacity_utilization_threshold       = var.capacity_utilization_threshold
    kms_deletion_window_days             = var.kms_deletion_window_days
  }
}

module "alarms" {
  source   = "./modules/alarms"
  for_each = toset(local.all_regions)

  region       = each.key
  name_prefix  = var.name_prefix
  tables       = local.alarm_tables
  peer_regions = module.topology.peer_regions[each.key]
  # MRSC tables publish no ReplicationLatency (AWS: "How DynamoDB global
  # tables work", Monitoring global tables).
  replication_latency_alarms = !local.strong
  settings                   = merge(local.alarm_settings, { alarm_action_arns = lookup(var.alarm_action_arns, each.key, []) })
  canary                     = local.canary_in[each.key]
}

# Before alarms went per region, the home region's topic, its key and the
# alarms lived in this root module; then in one module copy per provider
# alias. These keep the default regions' topics (and so their confirmed
# subscriptions); a deployment with another home region writes its own.
moved {
  from = aws_kms_key.alarms
  to   = module.alarms_home.aws_kms_key.topic
}

moved {
  from = aws_kms_alias.alarms
  to   = module.alarms_home.aws_kms_alias.topic
}

moved {
  from = aws_sns_topic.alarms
  to   = module.alarms_home.aws_sns_topic.this
}

moved {
  from = aws_sns_topic_policy.alarms
  to   = module.alarms_home.aws_sns_topic_policy.this
}

moved {
  from = aws_sns_topic_subscription.alarm_email
  to   = module.alarms_home.aws_sns_topic_subscription.email
}

moved {
  from = aws_cloudwatch_metric_alarm.table
  to   = module.alarms_home.aws_cloudwatch_metric_alarm.table
}

moved {
  from = aws_cloudwatch_metric_alarm.per_operation
  to   = module.alarms_home.aws_cloudwatch_metric_alarm.per_operation
}

moved {
  from = aws_cloudwatch_metric_alarm.replication_latency
  to   = module.alarms_home.aws_cloudwatch_metric_alarm.replication_latency
}

moved {
  from = module.alarms_home
  to   = module.alarms["us-east-1"]
}

moved {
  from = module.alarms_us_west_2[0]
  to   = module.alarms["us-west-2"]
}

moved {
  from = module.alarms_eu_central_1[0]
  to   = module.alarms["eu-central-1"]
}
