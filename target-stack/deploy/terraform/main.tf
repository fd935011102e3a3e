data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  create_kms  = var.kms_key_arn == ""
  kms_key_arn = local.create_kms ? aws_kms_key.stack[0].arn : var.kms_key_arn

  create_alarm_topic = var.alarm_sns_topic_arn == ""
  alarm_topic_arn    = local.create_alarm_topic ? aws_sns_topic.alarms[0].arn : var.alarm_sns_topic_arn

  stack_image = var.stack_image != "" ? var.stack_image : "${aws_ecr_repository.stack.repository_url}:${var.image_tag}"

  container_port = 8080
  api_service    = "${var.name}-api"
  worker_service = "${var.name}-worker"

  # Names the stack and peakload's diagnosis agree on.
  table_names = {
    carts      = "${var.name}-carts"
    sessions   = "${var.name}-sessions"
    timestamps = "${var.name}-timestamps"
    # Notification status (queued/sent/failed, attempts) by id: SQS cannot answer by id.
    notifications = "${var.name}-notifications"
  }
}

# ------------------------------------------------------------------ KMS

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource is always "*" (the key itself); the root statement only delegates to IAM.
  #checkov:skip=CKV_AWS_111:A KMS key policy's Resource is always "*" (the key itself); write access is bounded by principal and conditions.
  #checkov:skip=CKV_AWS_356:A KMS key policy's Resource is always "*" (the key itself).
  statement {
    sid       = "AccountAdministersThroughIAM"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsForThisStack"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/peakload/${var.name}/*",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/rds/instance/${var.name}-mysql/*",
      ]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
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
}

resource "aws_kms_key" "stack" {
  count                   = local.create_kms ? 1 : 0
  description             = "${var.name}: logs, SQS, DynamoDB, RDS, Secrets Manager, ECR, SNS"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "stack" {
  count         = local.create_kms ? 1 : 0
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.stack[0].key_id
}

# ------------------------------------------------------------------ ECR

resource "aws_ecr_repository" "stack" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = local.kms_key_arn
  }
}

resource "aws_ecr_repository" "cli" {
  name                 = "${var.name}-peakload"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = local.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "stack" {
  for_each   = { stack = aws_ecr_repository.stack.name, cli = aws_ecr_repository.cli.name }
  repository = each.value
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 30 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}

# ------------------------------------------------------------------ SQS

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-dlq"
  message_retention_seconds         = 1209600 # 14 days, the maximum: time to inspect and redrive
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "notifications" {
  name                              = "${var.name}-notifications"
  visibility_timeout_seconds        = var.sqs_visibility_timeout
  message_retention_seconds         = 345600 # 4 days
  receive_wait_time_seconds         = 20     # long polling
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
}

resource "aws_sqs_queue" "multivac" {
  name                              = "${var.name}-multivac"
  visibility_timeout_seconds        = var.sqs_visibility_timeout
  message_retention_seconds         = 345600
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.notifications.arn, aws_sqs_queue.multivac.arn]
  })
}

# ------------------------------------------------------------------ DynamoDB

resource "aws_dynamodb_table" "carts" {
  name                        = local.table_names.carts
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.db_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
}

resource "aws_dynamodb_table" "sessions" {
  name                        = local.table_names.sessions
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.db_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
}

resource "aws_dynamodb_table" "timestamps" {
  name                        = local.table_names.timestamps
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.db_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
}

resource "aws_dynamodb_table" "notifications" {
  name                        = local.table_names.notifications
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.db_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }

  # Status records expire with the DLQ's retention (14 days).
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
}

# ------------------------------------------------------------------ Secrets

# Generated by Secrets Manager itself (no random provider, nothing to pin). The data source
# yields a fresh value on every plan; ignore_changes keeps the first one.
data "aws_secretsmanager_random_password" "admin_token" {
  count               = var.enable_admin_faults ? 1 : 0
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "admin_token" {
  #checkov:skip=CKV2_AWS_57:Static bearer token for the test-only /admin/faults endpoint; no rotation Lambda. Rotate with `terraform apply -replace='aws_secretsmanager_secret_version.admin_token[0]'`.
  count                   = var.enable_admin_faults ? 1 : 0
  name                    = "${var.name}/admin-token"
  description             = "Bearer token for POST /admin/faults on ${var.name}"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "admin_token" {
  count         = var.enable_admin_faults ? 1 : 0
  secret_id     = aws_secretsmanager_secret.admin_token[0].id
  secret_string = data.aws_secretsmanager_random_password.admin_token[0].random_password

  lifecycle {
    ignore_changes = [secret_string]
  }
}

# ------------------------------------------------------------------ Alarm topic

resource "aws_sns_topic" "alarms" {
  count             = local.create_alarm_topic ? 1 : 0
  name              = "${var.name}-alarms"
  kms_master_key_id = local.kms_key_arn
}
