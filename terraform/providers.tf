# One provider for every region. Since provider 6 each regional resource
# takes a `region` argument, so the per-region resources (key replicas, table
# replicas, alarms, the replication canary) are for_each over the region list
# instead of one provider alias and one module copy per region. The default
# region is the home region: the primary tables, IAM (global) and the primary
# key live there.
provider "aws" {
  region = var.home_region

  default_tags {
    tags = local.tags
  }
}
