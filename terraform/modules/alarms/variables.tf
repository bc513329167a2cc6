variable "name_prefix" {
  description = "Prefix of the key alias, topic and alarm names."
  type        = string
}

variable "tables" {
  description = "Tables watched in this region, by stable key (catalog, audit) => table name."
  type        = map(string)
}

variable "peer_regions" {
  description = "The other regions of the global tables: every one receives this region's writes, so each gets a ReplicationLatency alarm here."
  type        = list(string)
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
    kms_deletion_window_days             = number
  })
}
