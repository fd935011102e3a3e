output "cluster_arn" {
  description = "Cluster to pass to aws ecs run-task --cluster."
  value       = aws_ecs_cluster.this.arn
}

output "task_definition_arn" {
  description = "Task definition to pass to aws ecs run-task --task-definition."
  value       = aws_ecs_task_definition.shard.arn
}

output "security_group_id" {
  description = "Security group for run-task's awsvpcConfiguration."
  value       = aws_security_group.tasks.id
}

output "task_role_name" {
  description = "The tasks' role: attach a policy to it for [observe] sources (cloudwatch:GetMetricData, logs:FilterLogEvents, scaling activities)."
  value       = aws_iam_role.task.name
}

output "log_group_name" {
  description = "Where each task's summary and progress lines go."
  value       = aws_cloudwatch_log_group.tasks.name
}

output "results_url" {
  description = "The s3:// URL the tasks may write under; give each run its own prefix below it."
  value       = "s3://${var.results_bucket}/${var.results_prefix}"
}
