# The default provider manages everything that lives once: the primary
# tables, IAM, the alarm topic and the primary KMS key, all in the home region.
provider "aws" {
  region = var.home_region

  default_tags {
    tags = local.tags
  }
}

# Terraform cannot create providers with for_each, so every region that may
# hold a replica needs a static alias here. Each alias is cheap: it makes no
# API call unless a resource uses it, and modules/kms-replica is only
# instantiated for regions listed in var.replica_regions. Adding a region is
# three edits: an alias here, a module block in kms.tf, and the region in
# local.supported_regions.
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
