# ECS cluster, Service Connect namespace (Cloud Map), task definitions and the two
# Fargate services. One image, two roles: the command is `api` or `worker`.

resource "aws_service_discovery_http_namespace" "this" {
  name        = var.name
  description = "Service Connect namespace of ${var.name} (api, worker)"
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  service_connect_defaults {
    namespace = aws_service_discovery_http_namespace.this.arn
  }
}

locals {
  # Non-secret configuration, identical for both roles.
  stack_environment = [
    { name = "PEAKLOAD_STACK_MYSQL_URL", value = "mysql://${var.db_username}@${aws_db_instance.mysql.address}:${aws_db_instance.mysql.port}/${var.db_name}?ssl-mode=REQUIRED" },
    { name = "PEAKLOAD_STACK_DYNAMODB_TABLE", value = var.name },
    { name = "PEAKLOAD_STACK_DYNAMODB_CARTS_TABLE", value = aws_dynamodb_table.carts.name },
    { name = "PEAKLOAD_STACK_DYNAMODB_SESSIONS_TABLE", value = aws_dynamodb_table.sessions.name },
    { name = "PEAKLOAD_STACK_DYNAMODB_TIMESTAMPS_TABLE", value = aws_dynamodb_table.timestamps.name },
    { name = "PEAKLOAD_STACK_DYNAMODB_NOTIFICATIONS_TABLE", value = aws_dynamodb_table.notifications.name },
    { name = "PEAKLOAD_STACK_SQS_QUEUE_URL", value = aws_sqs_queue.notifications.url },
    { name = "PEAKLOAD_STACK_MULTIVAC_QUEUE_URL", value = aws_sqs_queue.multivac.url },
    { name = "PEAKLOAD_STACK_DLQ_URL", value = aws_sqs_queue.dlq.url },
    { name = "AWS_REGION", value = local.region },
  ]

  # Injected by ECS from Secrets Manager at task start; never in the task definition in clear.
  stack_secrets = concat(
    [{ name = "PEAKLOAD_STACK_MYSQL_PASSWORD", valueFrom = "${aws_db_instance.mysql.master_user_secret[0].secret_arn}:password::" }],
    var.enable_admin_faults ? [{ name = "PEAKLOAD_STACK_ADMIN_TOKEN", valueFrom = aws_secretsmanager_secret.admin_token[0].arn }] : [],
  )

  healthcheck_command = [
    "CMD", "bash", "-c",
    "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200'",
  ]

  roles = {
    api = {
      cpu       = var.api_cpu
      memory    = var.api_memory
      task_role = aws_iam_role.api_task.arn
      log_group = aws_cloudwatch_log_group.api.name
    }
    worker = {
      cpu       = var.worker_cpu
      memory    = var.worker_memory
      task_role = aws_iam_role.worker_task.arn
      log_group = aws_cloudwatch_log_group.worker.name
    }
  }
}

resource "aws_ecs_task_definition" "stack" {
  for_each                 = local.roles
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = each.value.task_role

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Writable scratch space on Fargate task storage; the root filesystem is read-only.
  volume {
    name = "data"
  }
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name      = each.key
    image     = local.stack_image
    essential = true
    command   = [each.key, "--listen", "0.0.0.0:${local.container_port}"]

    portMappings = [{
      name          = "http"
      containerPort = local.container_port
      protocol      = "tcp"
      appProtocol   = "http"
    }]

    # Its own metrics in CloudWatch, under the ECS service's name (peakload reads them by it).
    environment = concat(local.stack_environment, var.cloudwatch_namespace == "" ? [] : [
      { name = "PEAKLOAD_STACK_CLOUDWATCH_NAMESPACE", value = var.cloudwatch_namespace },
      { name = "PEAKLOAD_STACK_CLOUDWATCH_SERVICE", value = "${var.name}-${each.key}" },
    ])
    secrets     = local.stack_secrets

    user                   = "10001:10001"
    readonlyRootFilesystem = true
    privileged             = false
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    mountPoints = [
      { sourceVolume = "data", containerPath = "/var/lib/peakload-stack", readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    ulimits = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]

    healthCheck = {
      command     = local.healthcheck_command
      interval    = 15
      timeout     = 3
      retries     = 3
      startPeriod = 20
    }
    stopTimeout = 45 # > the stack's default --shutdown-grace-secs (30)

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = each.value.log_group
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
        mode                  = "non-blocking"
        max-buffer-size       = "8m"
      }
    }
  }])
}

resource "aws_ecs_service" "api" {
  name                              = local.api_service
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.stack["api"].arn
  desired_count                     = var.api_min_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 30
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  wait_for_steady_state             = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = local.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.this.arn

    service {
      port_name      = "http"
      discovery_name = "api"
      client_alias {
        port     = local.container_port
        dns_name = "api"
      }
    }

    log_configuration {
      log_driver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service_connect.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "api"
      }
    }
  }

  lifecycle {
    # Application Auto Scaling owns the count after creation.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https, aws_iam_role_policy.execution]
}

resource "aws_ecs_service" "worker" {
  name                    = local.worker_service
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.stack["worker"].arn
  desired_count           = var.worker_min_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"
  wait_for_steady_state   = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The worker's /healthz, /readyz and /metrics are reachable in the namespace as worker:8080.
  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.this.arn

    service {
      port_name      = "http"
      discovery_name = "worker"
      client_alias {
        port     = local.container_port
        dns_name = "worker"
      }
    }

    log_configuration {
      log_driver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service_connect.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "worker"
      }
    }
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_iam_role_policy.execution]
}
