# Every region that serves traffic gets its own alarms, topic and topic key
# (modules/alarms): throttles and errors are published where the request
# was served, and an alarm can only notify a topic in its own region. The
# home region uses the default provider, like the tables and the primary key
# it watches, so its topic keeps the address it had before alarms went
# per region (the moved blocks below) and confirmed subscriptions survive.
# The other regions use their alias, gated on var.replica_regions as in
# kms.tf.

locals {
  alarm_tables = { for key, table in aws_dynamodb_table.this : key => table.name }

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
    kms_deletion_window_days             = var.kms_deletion_window_days
  }

  # Global tables replicate every replica to every other, so each region
  # sends to all the rest.
  peer_regions = { for r in local.all_regions : r => [for p in local.all_regions : p if p != r] }
}

module "alarms_home" {
  source = "./modules/alarms"

  name_prefix  = var.name_prefix
  tables       = local.alarm_tables
  peer_regions = local.peer_regions[var.home_region]
  settings     = local.alarm_settings
}

module "alarms_us_east_1" {
  source = "./modules/alarms"
  count  = contains(var.replica_regions, "us-east-1") ? 1 : 0
  providers = {
    aws = aws.us_east_1
  }

  name_prefix  = var.name_prefix
  tables       = local.alarm_tables
  peer_regions = local.peer_regions["us-east-1"]
  settings     = local.alarm_settings
}

module "alarms_us_west_2" {
  source = "./modules/alarms"
  count  = contains(var.replica_regions, "us-west-2") ? 1 : 0
  providers = {
    aws = aws.us_west_2
  }

  name_prefix  = var.name_prefix
  tables       = local.alarm_tables
  peer_regions = local.peer_regions["us-west-2"]
  settings     = local.alarm_settings
}

module "alarms_eu_central_1" {
  source = "./modules/alarms"
  count  = contains(var.replica_regions, "eu-central-1") ? 1 : 0
  providers = {
    aws = aws.eu_central_1
  }

  name_prefix  = var.name_prefix
  tables       = local.alarm_tables
  peer_regions = local.peer_regions["eu-central-1"]
  settings     = local.alarm_settings
}

locals {
  alarm_modules = merge(
    { (var.home_region) = module.alarms_home },
    {
      for region, m in {
        "us-east-1"    = module.alarms_us_east_1
        "us-west-2"    = module.alarms_us_west_2
        "eu-central-1" = module.alarms_eu_central_1
      } : region => m[0] if length(m) > 0
    },
  )
}

# Before alarms went per region, the home region's topic, its key and the
# alarms lived in this root module.
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
