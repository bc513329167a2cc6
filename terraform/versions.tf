terraform {
  # Cross-variable references in `validation` blocks (home region vs. replica
  # regions, the MRSC checks in modules/topology) need Terraform 1.9 or newer.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.0 gives every regional resource a `region` argument, so one provider
      # serves every region of the list (no alias per region); 6.22 added the
      # witness of multi-Region strong consistency. .terraform.lock.hcl pins
      # the exact release and its checksums.
      version = ">= 6.22.0, < 7.0.0"
    }
  }
}
