# The alarm topic of one region and the key that encrypts it. An alarm can
# only notify a topic in its own region, and SNS can only use a key in the
# topic's region, so every region that serves traffic has both.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.region
}

# CloudWatch must be able to use this key to publish to the topic, which the
# AWS-managed SNS key does not allow.
resource "aws_kms_key" "topic" {
  region                  = var.region
  description             = "GlobalScale: encryption of the alarm SNS topic in ${local.region}"
  enable_key_rotation     = true
  deletion_window_in_days = var.settings.kms_deletion_window_days
  is_enabled              = true
  policy                  = data.aws_iam_policy_document.topic_key.json

  # A key destroyed or replaced under a live topic stops alarm delivery,
  # and the only trace is in each alarm's history. That must take a
  # deliberate edit (README.md, Destroy), not a plan nobody read.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "topic" {
  region        = var.region
  name          = "alias/${var.name_prefix}-alarms"
  target_key_id = aws_kms_key.topic.key_id
}

data "aws_iam_policy_document" "topic_key" {
  #checkov:skip=CKV_AWS_109:In a key policy Resource "*" means only the key the policy is attached to; the account-root statement is the KMS default that delegates to IAM.
  #checkov:skip=CKV_AWS_111:Same statement: key policy scope is the key itself, not every resource.
  #checkov:skip=CKV_AWS_356:Key policies must use Resource "*", which refers to the key they are attached to.
  statement {
    sid       = "AccountRootManagesKeyAndDelegatesToIam"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # The replication canary's log group (canary.tf) is encrypted with this key.
  statement {
    sid       = "CloudWatchLogsEncryptTheCanaryLogGroup"
    effect    = "Allow"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_sns_topic" "this" {
  region            = var.region
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.topic.arn
}

resource "aws_sns_topic_policy" "this" {
  region = var.region
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "CloudWatchAlarmsInThisAccountPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*"]
    }
  }
}

# Every region's topic has the same subscribers, so each address confirms
# once per region.
resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.settings.alarm_emails)

  region    = var.region
  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = each.value
}

# Routing to something other than email: HTTPS (paging services, chat
# webhooks), SQS, Lambda, Firehose. HTTPS endpoints confirm like email does;
# PagerDuty and Opsgenie SNS integrations confirm automatically.
resource "aws_sns_topic_subscription" "other" {
  for_each = { for s in var.settings.alarm_subscriptions : "${s.protocol}:${s.endpoint}" => s }

  region                 = var.region
  topic_arn              = aws_sns_topic.this.arn
  protocol               = each.value.protocol
  endpoint               = each.value.endpoint
  endpoint_auto_confirms = each.value.protocol == "https" ? false : null
}

output "topic_arn" {
  description = "The alarm topic of this region."
  value       = aws_sns_topic.this.arn
}

output "kms_key_arn" {
  description = "The key that encrypts this region's alarm topic."
  value       = aws_kms_key.topic.arn
}

output "subscriptions" {
  description = "The topic's subscribers besides email, by \"<protocol>:<endpoint>\"."
  value       = { for k, s in aws_sns_topic_subscription.other : k => s.protocol }
}
