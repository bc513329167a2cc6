# The regions of the global tables and their consistency mode, checked at
# plan time. No provider: this module only validates and derives, so
# `terraform test` runs it without an AWS provider or account
# (tests/*.tftest.hcl, run by scripts/check-infra).

terraform {
  required_version = ">= 1.9.0, < 2.0.0"
}

variable "home_region" {
  description = "The region of the primary tables, first in every sidecar's list."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", var.home_region))
    error_message = "home_region must be an AWS region name such as us-east-1 or ap-southeast-1."
  }
}

variable "replica_regions" {
  description = "The other regions holding a replica."
  type        = list(string)

  validation {
    condition     = alltrue([for r in var.replica_regions : can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", r))])
    error_message = "Every replica region must be an AWS region name such as us-west-2 or ap-southeast-2."
  }

  validation {
    condition     = length(distinct(var.replica_regions)) == length(var.replica_regions)
    error_message = "replica_regions must not list a region twice."
  }

  validation {
    condition     = !contains(var.replica_regions, var.home_region)
    error_message = "replica_regions must not contain home_region: the home region holds the primary table, not a replica."
  }
}

variable "consistency_mode" {
  description = "EVENTUAL (multi-Region eventual consistency, the default) or STRONG (multi-Region strong consistency, MRSC)."
  type        = string
  default     = "EVENTUAL"

  validation {
    condition     = contains(["EVENTUAL", "STRONG"], var.consistency_mode)
    error_message = "consistency_mode must be EVENTUAL or STRONG."
  }

  validation {
    condition     = var.witness_region == null || var.consistency_mode == "STRONG"
    error_message = "witness_region is for consistency_mode = \"STRONG\" only: an eventually consistent global table has no witness."
  }

  validation {
    condition     = var.consistency_mode != "STRONG" || length(concat([var.home_region], var.replica_regions, var.witness_region == null ? [] : [var.witness_region])) == 3
    error_message = "consistency_mode = \"STRONG\" needs exactly three regions: home_region and two replica_regions, or home_region, one replica region and a witness_region."
  }

  validation {
    # DynamoDB's MRSC region sets: every replica and the witness come from one.
    condition = var.consistency_mode != "STRONG" || anytrue([
      for set in [
        ["us-east-1", "us-east-2", "us-west-2"],
        ["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"],
        ["ap-northeast-1", "ap-northeast-2", "ap-northeast-3"],
      ] : length(setsubtract(concat([var.home_region], var.replica_regions, var.witness_region == null ? [] : [var.witness_region]), set)) == 0
    ])
    error_message = "consistency_mode = \"STRONG\": every region and the witness must be in one MRSC region set (US: us-east-1, us-east-2, us-west-2; EU: eu-west-1, eu-west-2, eu-west-3, eu-central-1; AP: ap-northeast-1, ap-northeast-2, ap-northeast-3)."
  }
}

variable "witness_region" {
  description = "STRONG only: a region of the same region set that holds no replica and only votes, with two replica regions in all. null: none."
  type        = string
  default     = null

  validation {
    condition     = var.witness_region == null || !contains(concat([var.home_region], var.replica_regions), coalesce(var.witness_region, "-"))
    error_message = "witness_region must differ from home_region and every replica region: a witness holds no replica."
  }
}

variable "billing_mode" {
  description = "The tables' billing mode: STRONG needs PAY_PER_REQUEST."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    # Inline replicas (the only kind that takes consistency_mode) are created
    # with the table, before auto scaling could be attached, which DynamoDB
    # refuses for a PROVISIONED global table (hashicorp/terraform-provider-aws#13097).
    condition     = var.consistency_mode == "EVENTUAL" || var.billing_mode == "PAY_PER_REQUEST"
    error_message = "consistency_mode = \"STRONG\" needs billing_mode = \"PAY_PER_REQUEST\": its replicas are created with the table, before auto scaling can exist."
  }
}

locals {
  # The region sets of multi-Region strong consistency, as DynamoDB lists
  # them: every replica and the witness must come from one of them.
  mrsc_region_sets = {
    US = ["us-east-1", "us-east-2", "us-west-2"]
    EU = ["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"]
    AP = ["ap-northeast-1", "ap-northeast-2", "ap-northeast-3"]
  }

  regions     = concat([var.home_region], var.replica_regions)
  voters      = concat(local.regions, var.witness_region == null ? [] : [var.witness_region])
  strong      = var.consistency_mode == "STRONG"
  region_sets = [for name, set in local.mrsc_region_sets : name if length(setsubtract(local.voters, set)) == 0]
}

output "regions" {
  description = "Home region first, then the replica regions: the regions holding a replica, in the sidecars' order."
  value       = local.regions
}

output "strong" {
  description = "Whether the tables use multi-Region strong consistency."
  value       = local.strong
}

output "region_set" {
  description = "STRONG: the MRSC region set holding every region (US, EU or AP); null otherwise."
  value       = local.strong ? one(local.region_sets) : null
}

output "peer_regions" {
  description = "For each region holding a replica, the others: where its writes replicate to."
  value       = { for r in local.regions : r => [for p in local.regions : p if p != r] }
}
