# Plan-time checks of the region list and the MRSC option. Run with
# `terraform test` in modules/topology (scripts/check-infra does); the module
# has no provider, so nothing is downloaded and no account is needed.

run "default_regions_are_eventual" {
  command = plan

  variables {
    home_region     = "us-east-1"
    replica_regions = ["us-west-2", "eu-central-1"]
  }

  assert {
    condition     = output.regions == ["us-east-1", "us-west-2", "eu-central-1"]
    error_message = "home region first, then the replicas"
  }

  assert {
    condition     = output.peer_regions["us-west-2"] == ["us-east-1", "eu-central-1"]
    error_message = "each region replicates to every other"
  }

  assert {
    condition     = !output.strong && output.region_set == null
    error_message = "EVENTUAL by default"
  }
}

run "any_region_is_accepted" {
  command = plan

  variables {
    home_region     = "ap-southeast-1"
    replica_regions = ["ap-southeast-2", "ap-south-1", "sa-east-1", "us-gov-west-1"]
  }

  assert {
    condition     = length(output.regions) == 5
    error_message = "a list of any length and any regions"
  }
}

run "a_malformed_region_is_refused" {
  command = plan

  variables {
    home_region     = "us-east-1"
    replica_regions = ["US West 2"]
  }

  expect_failures = [var.replica_regions]
}

run "the_home_region_is_no_replica" {
  command = plan

  variables {
    home_region     = "us-east-1"
    replica_regions = ["us-east-1", "us-west-2"]
  }

  expect_failures = [var.replica_regions]
}

run "strong_with_three_regions_of_one_set" {
  command = plan

  variables {
    home_region      = "us-east-1"
    replica_regions  = ["us-east-2", "us-west-2"]
    consistency_mode = "STRONG"
  }

  assert {
    condition     = output.strong && output.region_set == "US"
    error_message = "three US regions are one MRSC region set"
  }
}

run "strong_with_two_regions_and_a_witness" {
  command = plan

  variables {
    home_region      = "eu-west-1"
    replica_regions  = ["eu-central-1"]
    consistency_mode = "STRONG"
    witness_region   = "eu-west-2"
  }

  assert {
    condition     = output.region_set == "EU" && output.regions == ["eu-west-1", "eu-central-1"]
    error_message = "the witness votes but holds no replica"
  }
}

run "strong_across_region_sets_is_refused" {
  command = plan

  variables {
    home_region      = "us-east-1"
    replica_regions  = ["us-west-2", "eu-central-1"]
    consistency_mode = "STRONG"
  }

  expect_failures = [var.consistency_mode]
}

run "strong_with_two_regions_and_no_witness_is_refused" {
  command = plan

  variables {
    home_region      = "us-east-1"
    replica_regions  = ["us-west-2"]
    consistency_mode = "STRONG"
  }

  expect_failures = [var.consistency_mode]
}

run "strong_with_four_regions_is_refused" {
  command = plan

  variables {
    home_region      = "eu-west-1"
    replica_regions  = ["eu-west-2", "eu-west-3", "eu-central-1"]
    consistency_mode = "STRONG"
  }

  expect_failures = [var.consistency_mode]
}

run "a_witness_needs_strong" {
  command = plan

  variables {
    home_region     = "us-east-1"
    replica_regions = ["us-west-2"]
    witness_region  = "us-east-2"
  }

  expect_failures = [var.consistency_mode]
}

run "a_witness_holds_no_replica" {
  command = plan

  variables {
    home_region      = "us-east-1"
    replica_regions  = ["us-west-2"]
    consistency_mode = "STRONG"
    witness_region   = "us-west-2"
  }

  expect_failures = [var.witness_region]
}

run "strong_needs_on_demand" {
  command = plan

  variables {
    home_region      = "us-east-1"
    replica_regions  = ["us-east-2", "us-west-2"]
    consistency_mode = "STRONG"
    billing_mode     = "PROVISIONED"
  }

  expect_failures = [var.billing_mode]
}
