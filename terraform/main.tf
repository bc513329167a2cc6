module "topology" {
  source = "./modules/topology"

  home_region      = var.home_region
  replica_regions  = var.replica_regions
  consistency_mode = var.consistency_mode
  witness_region   = var.witness_region
  billing_mode     = var.billing_mode
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Home region first: the same order the sidecar's region list uses.
  # modules/topology validates the list and the consistency mode at plan time.
  all_regions = module.topology.regions
  strong      = module.topology.strong

  tags = merge(var.tags, {
    Project   = "globalscale"
    ManagedBy = "terraform"
  })

  # Both tables share every setting but their names and keys, so they are one
  # resource with for_each; the map keys are the stable addresses.
  tables = {
    catalog = {
      name      = var.catalog_table_name
      hash_key  = "ItemID"
      range_key = "Category"
    }
    audit = {
      name      = "${var.catalog_table_name}-audit"
      hash_key  = "ItemKey"
      range_key = "EventId"
    }
  }

  provisioned = var.billing_mode == "PROVISIONED"
}
