# The default provider manages what lives once or in the home region: the
# primary tables, IAM, the primary KMS key and the home region's alarms.
provider "aws" {
  region = var.home_region

  default_tags {
    tags = local.tags
  }
}

# Terraform cannot create providers with for_each, so every region that may
# hold a replica needs a static alias here. Each alias is cheap: it makes no
# API call unless a resource uses it, and the per-region modules (key replica,
# table replicas, alarms) are only instantiated for regions listed in
# var.replica_regions. Adding a region: an alias here; a module block in each
# of kms.tf, dynamodb.tf and alarms.tf, with its entry in the region map
# beside it; and the region in the home_region and replica_regions
# validations in variables.tf.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "us_west_2"
  region = "us-west-2"

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "eu_central_1"
  region = "eu-central-1"

  default_tags {
    tags = local.tags
  }
}
