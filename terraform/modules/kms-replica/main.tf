# A replica of the multi-region table key in the region of the provider passed
# in. A module rather than a bare resource so that the root module can
# instantiate it once per optional region with `count` and a provider alias.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "primary_key_arn" {
  description = "ARN of the multi-region primary key to replicate."
  type        = string
}

variable "policy" {
  description = "Key policy of the replica (replicas do not inherit the primary's)."
  type        = string
}

variable "description" {
  description = "Description of the replica key."
  type        = string
}

variable "alias_name" {
  description = "Alias created for the replica in its region, e.g. alias/globalscale-tables."
  type        = string
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled deletion of the replica takes effect."
  type        = number
}

resource "aws_kms_replica_key" "this" {
  primary_key_arn         = var.primary_key_arn
  description             = var.description
  policy                  = var.policy
  deletion_window_in_days = var.deletion_window_in_days
  enabled                 = true

  # The table replica in this region, its PITR backups and its exports are
  # readable only with this key; see the primary's lifecycle in kms.tf.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "this" {
  name          = var.alias_name
  target_key_id = aws_kms_replica_key.this.key_id
}

output "arn" {
  description = "ARN of the replica key."
  value       = aws_kms_replica_key.this.arn
}
