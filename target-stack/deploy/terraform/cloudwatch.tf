# Log groups, dashboard and alarms. Every metric here lives in a namespace peakload's
# diagnosis reads: AWS/ECS, AWS/ApplicationELB, AWS/SQS, AWS/RDS, AWS/DynamoDB.

resource "aws_cloudwatch_log_group" "api" {
  name              = "/peakload/${var.name}/api"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
}

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/peakload/${var.name}/worker"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
}

resource "aws_cloudwatch_log_group" "service_connect" {
  name              = "/peakload/${var.name}/service-connect"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
}

# Created ahead of RDS so they get the retention and key (RDS would create them bare).
resource "aws_cloudwatch_log_group" "rds" {
  for_each          = toset(["error", "slowquery"])
  name              = "/aws/rds/instance/${var.name}-mysql/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
}

locals {
  alb_dim    = aws_lb.this.arn_suffix
  tg_dim     = aws_lb_target_group.api.arn_suffix
  cluster    = aws_ecs_cluster.this.name
  dash_stats = { period = 60, region = local.region }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "ALB target latency (p50 / p90 / p99, s)"
          metrics = [
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.alb_dim, "TargetGroup", local.tg_dim, { stat = "p50" }],
            ["...", { stat = "p90" }],
            ["...", { stat = "p99" }],
          ]
        })
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "Requests and 5xx"
          stat  = "Sum"
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", local.alb_dim],
            [".", "HTTPCode_Target_5XX_Count", ".", "."],
            [".", "HTTPCode_ELB_5XX_Count", ".", "."],
            [".", "RejectedConnectionCount", ".", "."],
          ]
        })
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "Queue depth"
          stat  = "Maximum"
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.notifications.name],
            ["...", aws_sqs_queue.multivac.name],
            ["...", aws_sqs_queue.dlq.name],
            [".", "ApproximateNumberOfMessagesNotVisible", ".", aws_sqs_queue.notifications.name],
          ]
        })
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "Oldest message age (s)"
          stat  = "Maximum"
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.notifications.name],
            ["...", aws_sqs_queue.multivac.name],
          ]
        })
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "ECS CPU / memory (%)"
          stat  = "Average"
          metrics = [
            ["AWS/ECS", "CPUUtilization", "ClusterName", local.cluster, "ServiceName", local.api_service],
            ["...", local.worker_service],
            [".", "MemoryUtilization", ".", ".", ".", local.api_service],
            ["...", local.worker_service],
          ]
        })
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "Running tasks"
          stat  = "Average"
          metrics = [
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", local.cluster, "ServiceName", local.api_service],
            ["...", local.worker_service],
          ]
        })
      },
      {
        type = "metric", x = 0, y = 18, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "RDS MySQL"
          stat  = "Average"
          metrics = [
            ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", aws_db_instance.mysql.identifier],
            [".", "DatabaseConnections", ".", "."],
            [".", "ReadLatency", ".", ".", { yAxis = "right" }],
            [".", "WriteLatency", ".", ".", { yAxis = "right" }],
          ]
        })
      },
      {
        type = "metric", x = 12, y = 18, width = 12, height = 6
        properties = merge(local.dash_stats, {
          title = "DynamoDB throttles and latency"
          stat  = "Sum"
          metrics = concat(
            [for t in values(local.table_names) : ["AWS/DynamoDB", "ThrottledRequests", "TableName", t, "Operation", "PutItem"]],
            [for t in values(local.table_names) : ["AWS/DynamoDB", "SuccessfulRequestLatency", "TableName", t, "Operation", "GetItem", { stat = "Average", yAxis = "right" }]],
          )
        })
      },
    ]
  })
}

# ------------------------------------------------------------------ alarms

resource "aws_cloudwatch_metric_alarm" "queue_depth" {
  alarm_name          = "${var.name}-notifications-queue-depth"
  alarm_description   = "Notification backlog above ${var.alarm_queue_depth_threshold}: the email worker is not keeping up."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.notifications.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alarm_queue_depth_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "oldest_message_age" {
  alarm_name          = "${var.name}-notifications-oldest-message-age"
  alarm_description   = "Oldest notification older than ${var.alarm_oldest_message_age_seconds}s."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.notifications.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alarm_oldest_message_age_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Messages were dead-lettered after ${var.sqs_max_receive_count} receives."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "p99_latency" {
  alarm_name          = "${var.name}-api-p99-latency"
  alarm_description   = "ALB target p99 response time above ${var.alarm_p99_latency_seconds}s."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = local.alb_dim, TargetGroup = local.tg_dim }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alarm_p99_latency_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "error_rate_5xx" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "5xx responses (target + ALB) above ${var.alarm_5xx_rate_percent}% of requests."
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alarm_5xx_rate_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]

  metric_query {
    id          = "rate"
    expression  = "100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / IF(requests > 0, requests, 1)"
    label       = "5xx rate (%)"
    return_data = true
  }
  metric_query {
    id = "target5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = local.alb_dim }
      stat        = "Sum"
      period      = 60
    }
  }
  metric_query {
    id = "elb5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = local.alb_dim }
      stat        = "Sum"
      period      = 60
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = local.alb_dim }
      stat        = "Sum"
      period      = 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "rds_cpu" {
  alarm_name          = "${var.name}-rds-cpu"
  alarm_description   = "RDS MySQL CPU above 80%."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.mysql.identifier }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
}
