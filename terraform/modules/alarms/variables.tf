variable "region" {
  description = "The region whose alarms these are: every resource of the module is created there."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the key alias, topic and alarm names."
  type        = string
}

variable "tables" {
  description = "Tables watched in this region, by stable key (catalog, audit) => table name."
  type        = map(string)
}

variable "peer_regions" {
  description = "The other regions of the global tables: every one receives this region's writes, so each gets a ReplicationLatency alarm here (unless replication_latency_alarms is false)."
  type        = list(string)
}

variable "replication_latency_alarms" {
  description = "Whether to create the ReplicationLatency alarms. false for multi-Region strong consistency: AWS documents that MRSC global tables publish no ReplicationLatency metric, so such alarms could never see data."
  type        = bool
  default     = true
}

variable "settings" {
  description = "Thresholds, periods, operations, subscribers and the key deletion window; the root module's variables of the same names."
  type = object({
    high_read_usage_threshold            = number
    high_write_usage_threshold           = number
    throttle_alarm_threshold             = number
    system_errors_threshold              = number
    replication_latency_threshold_ms     = number
    replication_latency_missing_data     = string
    replication_alarm_evaluation_periods = number
    alarm_evaluation_periods             = number
    alarm_operations                     = list(string)
    alarm_emails                         = list(string)
    alarm_subscriptions                  = list(object({ protocol = string, endpoint = string }))
    alarm_action_arns                    = list(string)
    user_errors_threshold                = number
    latency_threshold_ms                 = number
    latency_operations                   = list(string)
    capacity_utilization_threshold       = number
    kms_deletion_window_days             = number
  })
}

variable "canary" {
  description = "The replication canary in this region (root canary.tf): the canary table's name, this region's replica ARN and stream ARN, the roles of the writer and the reader, and how many five-minute periods without an arrival raise a pair's alarm. null: no canary."
  type = object({
    table_name      = string
    table_arn       = string
    stream_arn      = string
    writer_role_arn = string
    reader_role_arn = string
    missing_periods = number
  })
  default = null
}
