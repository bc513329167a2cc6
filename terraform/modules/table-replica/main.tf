# The replicas of the global tables in the region of the provider passed in.
# A module rather than the table's own `replica` blocks so that replica
# creation can wait for auto scaling: DynamoDB refuses a replica of a
# PROVISIONED table whose write capacity is not auto scaled yet, and Terraform
# cannot order a table's inline replicas after resources that need the table
# to exist (hashicorp/terraform-provider-aws#13097). The root module passes
# the scaling policies as this module's depends_on.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "tables" {
  description = "The global tables to replicate into this region, by stable key (catalog, audit): each table's name and the ARN of its primary in the home region."
  type = map(object({
    name = string
    arn  = string
  }))
}

variable "kms_key_arn" {
  description = "ARN of the table key's replica in this region; a replica must be encrypted with a key in its own region."
  type        = string
}

variable "deletion_protection" {
  description = "Deletion protection on every replica in this region."
  type        = bool
}

variable "resource_policies" {
  description = "Resource-based policy JSON for some of this region's replicas, by table key (the root module's audit.tf builds the audit table's). DynamoDB does not replicate resource policies, so each replica needs its own."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.resource_policies) : contains(keys(var.tables), k)])
    error_message = "Every key of resource_policies must be a key of tables."
  }
}

resource "aws_dynamodb_table_replica" "this" {
  for_each = var.tables

  global_table_arn            = each.value.arn
  kms_key_arn                 = var.kms_key_arn
  point_in_time_recovery      = true
  deletion_protection_enabled = var.deletion_protection

  # DynamoDB copies every existing item before a replica is ACTIVE; the
  # provider's 30 minutes are short for a catalog that already holds data.
  timeouts {
    create = "2h"
  }
}

# Left false, DynamoDB refuses a policy that would take from the identity
# applying it the right to change it again.
resource "aws_dynamodb_resource_policy" "this" {
  for_each = var.resource_policies

  resource_arn                        = aws_dynamodb_table_replica.this[each.key].arn
  policy                              = each.value
  confirm_remove_self_resource_access = false
}

# The replica resource does not export its stream; the table as seen from
# this region does.
data "aws_dynamodb_table" "this" {
  for_each = var.tables

  name = each.value.name

  depends_on = [aws_dynamodb_table_replica.this]
}

output "arns" {
  description = "ARN of each replica in this region, by table key."
  value       = { for k, r in aws_dynamodb_table_replica.this : k => r.arn }
}

output "stream_arns" {
  description = "Stream ARN of each replica in this region, by table key."
  value       = { for k, t in data.aws_dynamodb_table.this : k => t.stream_arn }
}
