# Any regions: modules/topology checks the names, duplicates and the MRSC
# rules at plan time.

variable "home_region" {
  description = "Region the sidecars prefer for writes and where the primary tables, the KMS primary key and the default provider live. Any AWS region."
  type        = string
  default     = "us-east-1"
}

variable "replica_regions" {
  description = "Regions that receive a replica of both tables, in addition to home_region: any number of AWS regions, in the order the sidecars should prefer them."
  type        = list(string)
  default     = ["us-west-2", "eu-central-1"]
}

variable "consistency_mode" {
  description = "EVENTUAL (multi-Region eventual consistency, the default) or STRONG (multi-Region strong consistency): three regions of one MRSC region set, or two plus witness_region, on PAY_PER_REQUEST. See README.md, \"Multi-Region strong consistency\"."
  type        = string
  default     = "EVENTUAL"
}

variable "witness_region" {
  description = "STRONG with two regions only: the witness region (same MRSC region set, holds no replica). null: none."
  type        = string
  default     = null
}

variable "catalog_table_name" {
  description = "Name of the catalog table. The audit table is named \"<catalog_table_name>-audit\". Must match the [[tables]] name in the sidecar config."
  type        = string
  default     = "GlobalCatalog"

  validation {
    # DynamoDB allows 255 characters; "-audit" takes six of them.
    condition     = can(regex("^[A-Za-z0-9_.-]{3,249}$", var.catalog_table_name))
    error_message = "catalog_table_name must be 3-249 characters of letters, digits, '_', '.' or '-'."
  }
}

variable "billing_mode" {
  description = "PAY_PER_REQUEST (on-demand) or PROVISIONED. PROVISIONED turns on write and read auto scaling, which global tables require; the replicas are created after it."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "read_capacity" {
  description = "PROVISIONED only: starting read capacity units of each table, and the auto scaling floor."
  type        = number
  default     = 5

  validation {
    condition     = var.read_capacity >= 1 && floor(var.read_capacity) == var.read_capacity
    error_message = "read_capacity must be a whole number of at least 1."
  }
}

variable "write_capacity" {
  description = "PROVISIONED only: starting write capacity units of each table, and the auto scaling floor."
  type        = number
  default     = 5

  validation {
    condition     = var.write_capacity >= 1 && floor(var.write_capacity) == var.write_capacity
    error_message = "write_capacity must be a whole number of at least 1."
  }
}

variable "max_read_capacity" {
  description = "PROVISIONED only: auto scaling ceiling for read capacity units of each table."
  type        = number
  default     = 100

  validation {
    condition     = var.max_read_capacity >= var.read_capacity
    error_message = "max_read_capacity must be at least read_capacity."
  }
}

variable "max_write_capacity" {
  description = "PROVISIONED only: auto scaling ceiling for write capacity units of each table."
  type        = number
  default     = 100

  validation {
    condition     = var.max_write_capacity >= var.write_capacity
    error_message = "max_write_capacity must be at least write_capacity."
  }
}

variable "autoscaling_target_utilization" {
  description = "PROVISIONED only: consumed/provisioned capacity, in percent, that auto scaling aims for."
  type        = number
  default     = 70

  validation {
    condition     = var.autoscaling_target_utilization >= 20 && var.autoscaling_target_utilization <= 90
    error_message = "autoscaling_target_utilization must be between 20 and 90 (the range Application Auto Scaling accepts for DynamoDB)."
  }
}

variable "deletion_protection" {
  description = "Deletion protection on both tables and every replica. Turn it off (and apply) before destroying or removing a region; see README.md."
  type        = bool
  default     = true
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled KMS key deletion takes effect."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "high_read_usage_threshold" {
  description = "HighReadUsage fires when a table consumes more read capacity units per second than this, averaged over each minute."
  type        = number
  default     = 1000

  validation {
    condition     = var.high_read_usage_threshold > 0
    error_message = "high_read_usage_threshold must be positive."
  }
}

variable "high_write_usage_threshold" {
  description = "HighWriteUsage fires when a table consumes more write capacity units per second than this, averaged over each minute."
  type        = number
  default     = 500

  validation {
    condition     = var.high_write_usage_threshold > 0
    error_message = "high_write_usage_threshold must be positive."
  }
}

variable "throttle_alarm_threshold" {
  description = "Throttle alarms fire when a table sees more throttled requests or events than this in one minute."
  type        = number
  default     = 10

  validation {
    condition     = var.throttle_alarm_threshold >= 0
    error_message = "throttle_alarm_threshold must not be negative."
  }
}

variable "system_errors_threshold" {
  description = "SystemErrors fires when a table sees more HTTP 500s from DynamoDB than this in one minute."
  type        = number
  default     = 0

  validation {
    condition     = var.system_errors_threshold >= 0
    error_message = "system_errors_threshold must not be negative."
  }
}

variable "replication_latency_threshold_ms" {
  description = "ReplicationLatency fires when the average time for a write in one region to reach another exceeds this many milliseconds over five minutes."
  type        = number
  default     = 60000

  validation {
    condition     = var.replication_latency_threshold_ms > 0
    error_message = "replication_latency_threshold_ms must be positive."
  }
}

variable "replication_latency_missing_data" {
  description = "treat_missing_data of the ReplicationLatency alarms. CloudWatch ignores it for AWS/DynamoDB metrics (alarms on that namespace always ignore missing data), so these alarms catch slow replication only; a stall, which stops the metric, is caught by the replication canary (replication_canary). Kept for the value CloudWatch shows."
  type        = string
  default     = "notBreaching"

  validation {
    condition     = contains(["breaching", "notBreaching", "ignore", "missing"], var.replication_latency_missing_data)
    error_message = "replication_latency_missing_data must be breaching, notBreaching, ignore or missing (CloudWatch's treat_missing_data values)."
  }
}

variable "replication_canary" {
  description = "Create the replication canary (canary.tf): a write per region each minute into a small global table, and in every other region an alarm when it stops arriving. The only alarm that fires when replication stalls; about USD 0.47 a month per region pair plus about USD 2.07 per region for the pipe's polling of the stream (USD 9.10 for three regions; README.md, Cost). Eventual consistency only: under STRONG a write that cannot replicate fails instead."
  type        = bool
  default     = true
}

variable "replication_canary_missing_minutes" {
  description = "Minutes without a canary write arriving from a region before that pair's ReplicationStalled alarm fires (whole five-minute periods)."
  type        = number
  default     = 10

  validation {
    condition     = var.replication_canary_missing_minutes >= 5 && var.replication_canary_missing_minutes <= 60 && var.replication_canary_missing_minutes % 5 == 0
    error_message = "replication_canary_missing_minutes must be a multiple of 5 between 5 and 60."
  }
}

variable "replication_alarm_evaluation_periods" {
  description = "Consecutive five-minute periods ReplicationLatency must breach (or be missing, under \"breaching\") before its alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.replication_alarm_evaluation_periods >= 1 && var.replication_alarm_evaluation_periods <= 12 && floor(var.replication_alarm_evaluation_periods) == var.replication_alarm_evaluation_periods
    error_message = "replication_alarm_evaluation_periods must be a whole number between 1 and 12 (an hour)."
  }
}

variable "alarm_evaluation_periods" {
  description = "Consecutive one-minute periods a metric must breach before an alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_evaluation_periods >= 1 && var.alarm_evaluation_periods <= 60
    error_message = "alarm_evaluation_periods must be between 1 and 60."
  }
}

variable "alarm_operations" {
  description = "DynamoDB operations summed into the ThrottledRequests and SystemErrors alarms (both metrics are only published per operation). A metric math alarm can reference at most 10 metrics, so every 10 operations make one alarm, in list order."
  type        = list(string)
  default = [
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactWriteItems", "TransactGetItems",
    "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction",
  ]

  validation {
    condition     = length(var.alarm_operations) >= 1 && length(distinct(var.alarm_operations)) == length(var.alarm_operations)
    error_message = "alarm_operations must list at least one operation, none twice."
  }

  validation {
    # A misspelt operation would be a metric that never has data: an alarm
    # that can never fire.
    condition     = alltrue([for op in var.alarm_operations : can(regex("^[A-Z][A-Za-z]+$", op))])
    error_message = "Every entry of alarm_operations must be a DynamoDB operation name as CloudWatch spells it, e.g. TransactGetItems."
  }
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic. Each address must confirm the subscription before it receives anything."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Every entry of alarm_emails must be an email address."
  }
}

variable "alarm_subscriptions" {
  description = <<-EOT
    Subscribers of every region's alarm topic besides alarm_emails, for routing alarms to something other
    than email: an HTTPS endpoint (PagerDuty, Opsgenie, a chat webhook), an SQS queue or a Lambda function.
    Each entry is { protocol, endpoint }: protocol one of https, sqs, lambda, firehose, email-json; endpoint the
    URL or ARN. An ARN must be in the same region as the topic for sqs and lambda, so list one per region.
  EOT
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.alarm_subscriptions : contains(["https", "sqs", "lambda", "firehose", "email-json"], s.protocol)])
    error_message = "Every alarm_subscriptions protocol must be https, sqs, lambda, firehose or email-json (use alarm_emails for email)."
  }

  validation {
    condition     = alltrue([for s in var.alarm_subscriptions : s.protocol != "https" || startswith(s.endpoint, "https://")])
    error_message = "An https subscription's endpoint must be an https:// URL."
  }
}

variable "alarm_action_arns" {
  description = "Further alarm actions by region, added to every alarm in that region beside its topic: for example an AWS Chatbot or incident-manager topic, or an SSM Incident Manager response plan ARN. An alarm action must be in the alarm's region."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue(flatten([for region, arns in var.alarm_action_arns : [for a in arns : can(regex("^arn:aws[a-z-]*:[a-z-]+:${region}:", a)) || can(regex("^arn:aws[a-z-]*:ssm-incidents::", a))]]))
    error_message = "Every ARN in alarm_action_arns must be in the region it is listed under (SSM Incident Manager response plans excepted)."
  }
}

variable "user_errors_threshold" {
  description = "UserErrors alarms fire when a region's account-wide DynamoDB UserErrors (HTTP 400s: validation, AccessDenied, missing tables) pass this per minute. A credentials or IAM mistake shows here first."
  type        = number
  default     = 10

  validation {
    condition     = var.user_errors_threshold >= 0
    error_message = "user_errors_threshold must not be negative."
  }
}

variable "latency_threshold_ms" {
  description = "SuccessfulRequestLatency alarms fire when the average latency of an operation of latency_operations on a table passes this many milliseconds in a minute."
  type        = number
  default     = 50

  validation {
    condition     = var.latency_threshold_ms > 0
    error_message = "latency_threshold_ms must be positive."
  }
}

variable "latency_operations" {
  description = "Operations whose SuccessfulRequestLatency is alarmed, each on each table in each region."
  type        = list(string)
  default     = ["GetItem", "PutItem", "UpdateItem", "Query"]

  validation {
    condition     = length(var.latency_operations) <= 10
    error_message = "latency_operations can name at most 10 operations (one metric-math alarm per table takes them all)."
  }
}

variable "capacity_utilization_threshold" {
  description = "Percent of an account or table limit at which the limit alarms fire: AccountProvisionedRead/WriteCapacityUtilization and MaxProvisionedTableRead/WriteCapacityUtilization in every region."
  type        = number
  default     = 80

  validation {
    condition     = var.capacity_utilization_threshold > 0 && var.capacity_utilization_threshold <= 100
    error_message = "capacity_utilization_threshold must be a percentage between 0 and 100."
  }
}

variable "ci_github_repository" {
  description = "\"owner/name\" of the GitHub repository whose workflow .github/workflows/aws.yml may assume the CI role (ci.tf) through GitHub's OIDC provider, from its protected environment ci_github_environment only. null (the default): no CI role. Use it in a CI environment of its own (examples/ci.tfvars), whose records the CI may delete."
  type        = string
  default     = null

  validation {
    condition     = var.ci_github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", coalesce(var.ci_github_repository, "x/x")))
    error_message = "ci_github_repository must be \"owner/name\"."
  }
}

variable "ci_github_environment" {
  description = "The GitHub environment (protected by required reviewers in the repository settings) whose jobs may assume the CI role."
  type        = string
  default     = "aws"
}

variable "ci_github_oidc_provider_arn" {
  description = "ARN of the account's existing IAM OIDC provider for token.actions.githubusercontent.com; null: ci.tf creates it (an account holds one per URL)."
  type        = string
  default     = null
}

variable "eks_clusters" {
  description = <<-EOT
    The EKS clusters whose pods may assume the sidecar role, one per region that runs the sidecar.
    Each entry names the cluster's IAM OIDC provider ARN (arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE)
    and its issuer URL, with or without https:// (https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE).
  EOT
  type = list(object({
    oidc_provider_arn = string
    oidc_issuer_url   = string
  }))

  validation {
    condition     = length(var.eks_clusters) >= 1
    error_message = "eks_clusters must name at least one cluster, or nothing could assume the sidecar role."
  }

  validation {
    condition     = alltrue([for c in var.eks_clusters : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", c.oidc_provider_arn))])
    error_message = "Every oidc_provider_arn must be an IAM OIDC provider ARN."
  }

  validation {
    condition     = alltrue([for c in var.eks_clusters : can(regex("^(https://)?[^/\\s]+(/[^\\s]*)?$", c.oidc_issuer_url))])
    error_message = "Every oidc_issuer_url must be a host name with an optional path, optionally prefixed with https://."
  }
}

variable "k8s_namespace" {
  description = "Namespace of the pods that run the sidecar (deploy/k8s uses \"catalog\")."
  type        = string
  default     = "catalog"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.k8s_namespace))
    error_message = "k8s_namespace must be a valid Kubernetes namespace name."
  }
}

variable "k8s_service_account" {
  description = "Service account of the pods that run the sidecar (deploy/k8s uses \"catalog-app\")."
  type        = string
  default     = "catalog-app"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.k8s_service_account))
    error_message = "k8s_service_account must be a valid Kubernetes object name."
  }
}

variable "name_prefix" {
  description = "Prefix of every name this module gives that must be unique in the account or region: the IAM roles and policies (\"<name_prefix>-sidecar\", \"<name_prefix>-sidecar-streams\", \"<name_prefix>-auditor\"), the KMS aliases, the alarm topics, the alarms and the scaling policies. Two environments in one account need different prefixes (and different catalog_table_name)."
  type        = string
  default     = "globalscale"

  validation {
    # The narrowest of the rules it must meet: IAM names allow [A-Za-z0-9+=,.@_-]
    # up to 64 characters, KMS aliases [A-Za-z0-9/_-], SNS topics
    # [A-Za-z0-9_-]. 32 leaves room for the longest suffix on the role name.
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and have at most 32 letters, digits or hyphens (the characters that IAM role and policy names, KMS aliases and SNS topic names all accept)."
  }
}

variable "sidecar_table_actions" {
  description = "IAM actions the sidecar role is allowed on the catalog table and its indexes in every region. The default is the data plane plus DescribeTable and DescribeTimeToLive; add e.g. dynamodb:UpdateTimeToLive or dynamodb:ListTagsOfResource when an application calls them through the sidecar. The audit table's rights are fixed."
  type        = list(string)
  default = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
  ]

  validation {
    condition     = length(var.sidecar_table_actions) >= 1 && alltrue([for a in var.sidecar_table_actions : can(regex("^dynamodb:[A-Za-z]+$", a))])
    error_message = "Every entry of sidecar_table_actions must be one DynamoDB action, \"dynamodb:<Action>\", without wildcards: a wildcard would also grant actions AWS adds later."
  }

  validation {
    # The stream actions take stream ARNs (DescribeStream, GetShardIterator,
    # GetRecords) or only "*" (ListStreams), never the table and index ARNs
    # these actions are granted on, so listed here they would grant nothing.
    # The sidecar forwards the DynamoDB Streams API; iam.tf grants the stream
    # actions in a policy of their own, on the catalog's stream ARNs
    # (sidecar_stream_reads).
    condition     = length(setintersection(var.sidecar_table_actions, ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"])) == 0
    error_message = "sidecar_table_actions must not list stream actions: its entries are granted on the catalog's table and index ARNs, where stream actions grant nothing. The sidecar role gets DescribeStream, GetShardIterator and GetRecords on the catalog's stream ARNs, and ListStreams on \"*\", from a policy of their own, attached while sidecar_stream_reads is true (the default); see README.md."
  }
}

variable "sidecar_stream_reads" {
  description = "Attach to the sidecar role a policy (\"<name_prefix>-sidecar-streams\") that reads the catalog table's streams in every region (DescribeStream, GetShardIterator and GetRecords on its stream ARNs, ListStreams on \"*\"), so that stream readers pointed at the sidecar, which forwards the DynamoDB Streams API with its own credentials, are served. The audit table's streams are denied whatever this says. false: no such policy, and the sidecar's stream requests come back as AccessDeniedException."
  type        = bool
  default     = true
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary attached to the sidecar role and the auditor role, for accounts that require one."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN or null."
  }
}

variable "auditor_trusted_principals" {
  description = <<-EOT
    IAM principals that may assume the auditor role (read-only on the audit table), e.g. the role your
    auditors sign in with: arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Auditor_0123456789abcdef.
    Empty (the default): no auditor role is created. An account root (arn:aws:iam::111122223333:root) hands the
    decision to that account's IAM policies, so prefer naming roles.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.auditor_trusted_principals : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$", p))])
    error_message = "Every entry of auditor_trusted_principals must be the ARN of an IAM role, an IAM user or an account root (arn:aws:iam::<account>:root)."
  }
}

variable "audit_resource_policy" {
  description = "Attach the audit table's resource-based policy (audit.tf) to the table and every replica: only the sidecar role writes records, nobody changes or deletes them, and only the Terraform identity, audit_admin_principals and audit_break_glass_principals change the table. See README.md, \"The audit table is append-only, up to a point\"."
  type        = bool
  default     = true
}

variable "audit_admin_principals" {
  description = "IAM principal ARNs, besides the identity running Terraform (always included), that may change the audit table's settings and its resource policy: every role that runs Terraform for this environment (CI, and people who apply by hand). Patterns with * are allowed. Such a principal cannot change or delete records."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.audit_admin_principals : can(regex("^arn:aws[a-z*-]*:iam::[0-9]{12}:.+$", p))])
    error_message = "Every entry of audit_admin_principals must be an IAM principal ARN (arn:aws:iam::<account>:role/..., :user/... or :root), optionally with * wildcards."
  }
}

variable "audit_break_glass_principals" {
  description = "IAM principal ARNs exempt from the audit table's resource policy altogether: they may delete or change records and change the table (subject to their own IAM policies). Keep this to a role that is assumed rarely, with MFA, and whose use is alarmed on. Patterns with * are allowed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.audit_break_glass_principals : can(regex("^arn:aws[a-z*-]*:iam::[0-9]{12}:.+$", p))])
    error_message = "Every entry of audit_break_glass_principals must be an IAM principal ARN (arn:aws:iam::<account>:role/..., :user/... or :root), optionally with * wildcards."
  }
}

variable "tags" {
  description = "Tags added to every resource, on top of Project and ManagedBy."
  type        = map(string)
  default     = {}
}
