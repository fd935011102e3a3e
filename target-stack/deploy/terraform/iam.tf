# Least privilege: one execution role (pull image, write logs, read the two secrets),
# and one task role per service scoped to the exact queue, table, key and secret ARNs.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

# ------------------------------------------------------------------ execution role

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "ECS task execution role of ${var.name}: image pull, logs, secrets injection"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"] # account-level API: has no resource-level permissions
    resources = ["*"]
  }
  statement {
    sid = "EcrPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.stack.arn]
  }
  statement {
    sid     = "Logs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [
      "${aws_cloudwatch_log_group.api.arn}:*",
      "${aws_cloudwatch_log_group.worker.arn}:*",
      "${aws_cloudwatch_log_group.service_connect.arn}:*",
    ]
  }
  statement {
    sid     = "InjectSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = concat(
      [aws_db_instance.mysql.master_user_secret[0].secret_arn],
      aws_secretsmanager_secret.admin_token[*].arn,
    )
  }
  statement {
    sid       = "DecryptSecretsAndImages"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ------------------------------------------------------------------ api task role

locals {
  table_arns = [
    aws_dynamodb_table.carts.arn,
    aws_dynamodb_table.sessions.arn,
    aws_dynamodb_table.timestamps.arn,
    aws_dynamodb_table.notifications.arn,
  ]
  table_and_index_arns = concat(local.table_arns, [for a in local.table_arns : "${a}/index/*"])
  dynamodb_rw_actions = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
  ]
  work_queue_arns = [aws_sqs_queue.notifications.arn, aws_sqs_queue.multivac.arn]
}

resource "aws_iam_role" "api_task" {
  name               = "${var.name}-api-task"
  description        = "Task role of ${var.name} api: enqueue work, read/write its DynamoDB tables"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "api_task" {
  statement {
    sid       = "EnqueueWork"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = local.work_queue_arns
  }
  statement {
    sid       = "ReadinessAndStatusOfDlq"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.dlq.arn]
  }
  statement {
    sid       = "Tables"
    actions   = local.dynamodb_rw_actions
    resources = local.table_and_index_arns
  }
  statement {
    sid       = "SseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }
  dynamic "statement" {
    for_each = var.cloudwatch_namespace == "" ? [] : [var.cloudwatch_namespace]
    content {
      sid = "OwnMetrics"
      # PutMetricData has no resource-level permissions; the namespace condition scopes it.
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = [statement.value]
      }
    }
  }
}

resource "aws_iam_role_policy" "api_task" {
  name   = "api"
  role   = aws_iam_role.api_task.id
  policy = data.aws_iam_policy_document.api_task.json
}

# ------------------------------------------------------------------ worker task role

resource "aws_iam_role" "worker_task" {
  name               = "${var.name}-worker-task"
  description        = "Task role of ${var.name} worker: drain the work queues, dead-letter, update tables"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "worker_task" {
  statement {
    sid = "DrainWork"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = local.work_queue_arns
  }
  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.dlq.arn]
  }
  statement {
    sid       = "Tables"
    actions   = local.dynamodb_rw_actions
    resources = local.table_and_index_arns
  }
  statement {
    sid       = "SseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }
  dynamic "statement" {
    for_each = var.cloudwatch_namespace == "" ? [] : [var.cloudwatch_namespace]
    content {
      sid = "OwnMetrics"
      # PutMetricData has no resource-level permissions; the namespace condition scopes it.
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = [statement.value]
      }
    }
  }
}

resource "aws_iam_role_policy" "worker_task" {
  name   = "worker"
  role   = aws_iam_role.worker_task.id
  policy = data.aws_iam_policy_document.worker_task.json
}
