output "catalog_table_name" {
  description = "Name of the catalog table; the sidecar's [[tables]] name."
  value       = local.table["catalog"].name
}

output "catalog_table_arn" {
  description = "ARN of the catalog table in the home region."
  value       = local.table["catalog"].arn
}

output "catalog_stream_arn" {
  description = "ARN of the catalog table's stream in the home region."
  value       = local.table["catalog"].stream_arn
}

output "audit_table_name" {
  description = "Name of the audit table."
  value       = local.table["audit"].name
}

output "audit_table_arn" {
  description = "ARN of the audit table in the home region."
  value       = local.table["audit"].arn
}

output "audit_stream_arn" {
  description = "ARN of the audit table's stream in the home region."
  value       = local.table["audit"].stream_arn
}

output "replica_table_arns" {
  description = "Per table (catalog, audit), the ARN of each replica by region."
  value = {
    for key in keys(local.tables) :
    key => { for region, r in local.replicas[key] : region => r.arn }
  }
}

output "replica_stream_arns" {
  description = "Per table (catalog, audit), the stream ARN of each replica by region."
  value = {
    for key in keys(local.tables) :
    key => { for region, r in local.replicas[key] : region => r.stream_arn }
  }
}

output "regions" {
  description = "Home region first, then the replica regions: the order for DDB_REGIONS in the home region's sidecars."
  value       = local.all_regions
}

output "sidecar_role_arn" {
  description = "Role for the eks.amazonaws.com/role-arn annotation of the sidecar's service account."
  value       = aws_iam_role.sidecar.arn
}

output "sidecar_policy_arn" {
  description = "Least-privilege policy attached to the sidecar role."
  value       = aws_iam_policy.sidecar.arn
}

output "sidecar_streams_policy_arn" {
  description = "Policy attached to the sidecar role for the DynamoDB Streams API it forwards: reads of the catalog's streams; null when sidecar_stream_reads is false."
  value       = one(aws_iam_policy.sidecar_streams[*].arn)
}

output "auditor_role_arn" {
  description = "Read-only role on the audit table, for the principals in auditor_trusted_principals; null when that list is empty and no role exists."
  value       = one(aws_iam_role.auditor[*].arn)
}

output "alarm_topic_arns" {
  description = "The alarm SNS topic of each region, home region included; every alarm notifies the topic in its own region."
  value       = { for region, m in module.alarms : region => m.topic_arn }
}

output "table_kms_key_arns" {
  description = "ARN of the table key by region (the multi-region primary in the home region, its replicas elsewhere)."
  value       = local.table_key_arns
}

output "alarm_kms_key_arns" {
  description = "ARN of the key that encrypts the alarm topic, by region."
  value       = { for region, m in module.alarms : region => m.kms_key_arn }
}

output "consistency_mode" {
  description = "EVENTUAL or STRONG (multi-Region strong consistency)."
  value       = var.consistency_mode
}

output "witness_region" {
  description = "The MRSC witness region, or null."
  value       = var.witness_region
}

output "replication_canary_table" {
  description = "The replication canary's table (one item per region), or null without the canary."
  value       = one(aws_dynamodb_table.canary[*].name)
}

output "ci_role_arn" {
  description = "The role .github/workflows/aws.yml assumes (repository or environment variable GLOBALSCALE_CI_ROLE_ARN); null without ci_github_repository."
  value       = one(aws_iam_role.ci[*].arn)
}
