# Everything peakload needs to load the stack and to diagnose a run against it.

output "alb_dns_name" {
  description = "Public DNS name of the ALB (point your certificate's DNS record here)."
  value       = aws_lb.this.dns_name
}

output "target_url" {
  description = "Base URL for `peakload run ... --target` (use your own DNS name if the certificate is for it)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "alb_arn_suffix" {
  description = "AWS/ApplicationELB dimension LoadBalancer."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "AWS/ApplicationELB dimension TargetGroup."
  value       = aws_lb_target_group.api.arn_suffix
}

output "ecs_cluster_name" {
  description = "AWS/ECS dimension ClusterName."
  value       = aws_ecs_cluster.this.name
}

output "api_service_name" {
  description = "AWS/ECS dimension ServiceName of the API."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "AWS/ECS dimension ServiceName of the worker."
  value       = aws_ecs_service.worker.name
}

output "api_autoscaling_resource_id" {
  description = "Application Auto Scaling resource id of the API (DescribeScalingActivities)."
  value       = aws_appautoscaling_target.api.resource_id
}

output "worker_autoscaling_resource_id" {
  description = "Application Auto Scaling resource id of the worker (DescribeScalingActivities)."
  value       = aws_appautoscaling_target.worker.resource_id
}

output "notifications_queue_url" {
  description = "URL of the notifications queue."
  value       = aws_sqs_queue.notifications.url
}

output "notifications_queue_name" {
  description = "AWS/SQS dimension QueueName of the notifications queue."
  value       = aws_sqs_queue.notifications.name
}

output "multivac_queue_url" {
  description = "URL of the MultiVAC queue."
  value       = aws_sqs_queue.multivac.url
}

output "multivac_queue_name" {
  description = "AWS/SQS dimension QueueName of the MultiVAC queue."
  value       = aws_sqs_queue.multivac.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_name" {
  description = "AWS/SQS dimension QueueName of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "dynamodb_table_names" {
  description = "AWS/DynamoDB dimension TableName of each table."
  value = {
    carts         = aws_dynamodb_table.carts.name
    sessions      = aws_dynamodb_table.sessions.name
    timestamps    = aws_dynamodb_table.timestamps.name
    notifications = aws_dynamodb_table.notifications.name
  }
}

output "rds_instance_identifier" {
  description = "AWS/RDS dimension DBInstanceIdentifier."
  value       = aws_db_instance.mysql.identifier
}

output "rds_endpoint" {
  description = "MySQL endpoint (host:port), private."
  value       = aws_db_instance.mysql.endpoint
}

output "db_master_user_secret_arn" {
  description = "Secrets Manager secret (managed by RDS) holding the MySQL master password."
  value       = aws_db_instance.mysql.master_user_secret[0].secret_arn
}

output "admin_token_secret_arn" {
  description = "Secrets Manager secret holding the /admin/faults bearer token (null when disabled)."
  value       = one(aws_secretsmanager_secret.admin_token[*].arn)
}

output "log_group_names" {
  description = "CloudWatch Logs groups peakload's diagnosis searches (FilterLogEvents)."
  value = {
    api             = aws_cloudwatch_log_group.api.name
    worker          = aws_cloudwatch_log_group.worker.name
    service_connect = aws_cloudwatch_log_group.service_connect.name
    rds_error       = aws_cloudwatch_log_group.rds["error"].name
    rds_slowquery   = aws_cloudwatch_log_group.rds["slowquery"].name
  }
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the stack."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "service_connect_namespace" {
  description = "Cloud Map namespace used by ECS Service Connect (api:8080, worker:8080)."
  value       = aws_service_discovery_http_namespace.this.name
}

output "ecr_repository_urls" {
  description = "Where to push the images."
  value = {
    peakload_stack = aws_ecr_repository.stack.repository_url
    peakload       = aws_ecr_repository.cli.repository_url
  }
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = local.alarm_topic_arn
}

output "peakload_observe" {
  description = "Everything peakload's diagnosis queries, in one object (terraform output -json peakload_observe)."
  value = {
    region = local.region
    cloudwatch = {
      "AWS/ApplicationELB" = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
      "AWS/ECS"            = { ClusterName = aws_ecs_cluster.this.name, ServiceNames = [aws_ecs_service.api.name, aws_ecs_service.worker.name] }
      "AWS/SQS"            = { QueueNames = [aws_sqs_queue.notifications.name, aws_sqs_queue.multivac.name, aws_sqs_queue.dlq.name] }
      "AWS/RDS"            = { DBInstanceIdentifier = aws_db_instance.mysql.identifier }
      "AWS/DynamoDB"       = { TableNames = values(local.table_names) }
    }
    autoscaling_resource_ids = [aws_appautoscaling_target.api.resource_id, aws_appautoscaling_target.worker.resource_id]
    log_groups               = [aws_cloudwatch_log_group.api.name, aws_cloudwatch_log_group.worker.name]
  }
}

output "peakload_scenario_observe" {
  description = "The [observe] sections of a peakload scenario for this deployment: terraform output -raw peakload_scenario_observe >> scenario.toml"
  value       = <<-EOT
    [observe]
    settle = "2m" # CloudWatch publishes standard metrics with about a minute's delay

    [observe.cloudwatch]
    region = "${local.region}"
    presets = [
      { kind = "ecs_service", cluster = "${aws_ecs_cluster.this.name}", service = "${aws_ecs_service.api.name}" },
      { kind = "ecs_service", cluster = "${aws_ecs_cluster.this.name}", service = "${aws_ecs_service.worker.name}" },
      { kind = "alb_target_group", load_balancer = "${aws_lb.this.arn_suffix}", target_group = "${aws_lb_target_group.api.arn_suffix}" },
      { kind = "sqs_queue", queue = "${aws_sqs_queue.notifications.name}" },
      { kind = "sqs_queue", queue = "${aws_sqs_queue.multivac.name}" },
      { kind = "rds_instance", instance = "${aws_db_instance.mysql.identifier}" },
    %{~for t in values(local.table_names)}
      { kind = "dynamodb_table", table = "${t}" },
    %{~endfor}
    ]
    %{~if var.cloudwatch_namespace != ""}
    metrics = [
      { namespace = "${var.cloudwatch_namespace}", metric = "DbPoolWaitTime", stat = "p99", dimensions = { Service = "${local.api_service}" }, unit = "Seconds" },
      { namespace = "${var.cloudwatch_namespace}", metric = "DbOperationsInFlight", stat = "Maximum", dimensions = { Service = "${local.api_service}" }, unit = "Count" },
    ]
    %{~endif}

    [observe.logs]
    log_groups = ["${aws_cloudwatch_log_group.api.name}", "${aws_cloudwatch_log_group.worker.name}"]

    [observe.scaling]
    ecs = [
      { cluster = "${aws_ecs_cluster.this.name}", service = "${aws_ecs_service.api.name}" },
      { cluster = "${aws_ecs_cluster.this.name}", service = "${aws_ecs_service.worker.name}" },
    ]
  EOT
}
