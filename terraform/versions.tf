terraform {
  # Cross-variable references in `validation` blocks (home region vs. replica
  # regions) need Terraform 1.9 or newer.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}
