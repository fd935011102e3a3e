# peakload load generators on ECS Fargate: one task definition whose tasks each run one shard
# of a scenario (`--shard I/N --start-at T`, passed by `aws ecs run-task` overrides, see
# docs/scale.md), writing their results to S3 under one prefix; a last task runs
# `peakload merge s3://...`. The tasks may only read and write that prefix.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  create_kms  = var.kms_key_arn == ""
  kms_key_arn = local.create_kms ? aws_kms_key.logs[0].arn : var.kms_key_arn
  log_group   = "/peakload/${var.name}/loadgen"

  bucket_arn = "arn:${local.partition}:s3:::${var.results_bucket}"
  tags       = merge(var.tags, { Project = "peakload", Component = "loadgen", ManagedBy = "terraform" })
}

# ------------------------------------------------------------------ KMS (logs)

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
    sid = "CloudWatchLogsForTheLoadGenerators"
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
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group}"]
    }
  }
}

resource "aws_kms_key" "logs" {
  count                   = local.create_kms ? 1 : 0
  description             = "${var.name}: load generator logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

# ------------------------------------------------------------------ logs and cluster

resource "aws_cloudwatch_log_group" "tasks" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

resource "aws_ecs_cluster" "this" {
  name = "${var.name}-loadgen"

  # Per-task CPU and memory: a shard whose generator runs hot shows here (and in the merged
  # per-shard table's generator CPU).
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

# ------------------------------------------------------------------ network

resource "aws_security_group" "tasks" {
  #checkov:skip=CKV2_AWS_5:Attached at launch: aws ecs run-task passes it in awsvpcConfiguration (docs/scale.md), there is no service to attach it to.
  name        = "${var.name}-loadgen"
  description = "peakload load generators: no inbound; outbound to the target and to AWS APIs"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "target" {
  for_each          = { for pair in setproduct(var.target_cidrs, var.target_ports) : "${pair[0]}:${pair[1]}" => pair }
  security_group_id = aws_security_group.tasks.id
  description       = "Load to the system under test"
  cidr_ipv4         = each.value[0]
  from_port         = each.value[1]
  to_port           = each.value[1]
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "aws_apis" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to S3, ECR and CloudWatch Logs (or their VPC endpoints)"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "dns" {
  security_group_id = aws_security_group.tasks.id
  description       = "DNS to the VPC resolver"
  cidr_ipv4         = "169.254.169.253/32"
  from_port         = 53
  to_port           = 53
  ip_protocol       = "udp"
}

# ------------------------------------------------------------------ task definition

resource "aws_ecs_task_definition" "shard" {
  family                   = "${var.name}-shard"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The root filesystem is read-only; results are made here before they are uploaded.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "peakload"
    image                  = var.image
    essential              = true
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    privileged             = false
    # Every argument (the shard, the start time, the results prefix) comes from run-task's
    # command override, so one definition serves every run and every shard.
    command = ["--help"]
    mountPoints = [{
      sourceVolume  = "tmp"
      containerPath = "/tmp"
      readOnly      = false
    }]
    # A stopped task gets SIGTERM: peakload drains, writes and uploads what it measured
    # within this (the Fargate maximum).
    stopTimeout = 120
    ulimits = [{
      name      = "nofile"
      softLimit = 65536
      hardLimit = 65536
    }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "shard"
      }
    }
  }])
  tags = local.tags
}
