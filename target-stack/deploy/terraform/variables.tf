variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name prefix for every resource (letters, digits and hyphens)."
  type        = string
  default     = "peakload-stack"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,27}$", var.name))
    error_message = "name must be 2-28 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cloudwatch_namespace" {
  description = "CloudWatch namespace the stack publishes its own metrics to (pool, queue, worker, latency), every 10 s; empty: do not publish."
  type        = string
  default     = "PeakloadStack"

  validation {
    condition     = var.cloudwatch_namespace == "" || (can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.cloudwatch_namespace)) && !startswith(var.cloudwatch_namespace, "AWS/"))
    error_message = "cloudwatch_namespace must be 1-255 letters, digits or . _ / # : - and must not start with AWS/."
  }
}

variable "environment" {
  description = "Environment label (tag only)."
  type        = string
  default     = "loadtest"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------- network (reused)

variable "vpc_id" {
  description = "Existing VPC to deploy into."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two AZs) for ECS tasks and RDS."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Give at least two private subnets in different AZs."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets (at least two AZs) for the internet-facing ALB."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "Give at least two public subnets in different AZs."
  }
}

variable "alb_ingress_cidrs" {
  description = "CIDR blocks allowed to reach the ALB (the load generators). Narrow this to your peakload runners."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "task_egress_cidrs" {
  description = "CIDR blocks tasks may reach on 443 (AWS APIs, ECR). Use VPC endpoint prefix lists/CIDRs to narrow."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# ---------------------------------------------------------------- ALB

variable "certificate_arn" {
  description = "ACM certificate ARN for the HTTPS listener."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.2+)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "alb_deletion_protection" {
  description = "Deletion protection on the ALB."
  type        = bool
  default     = true
}

variable "alb_access_logs_bucket" {
  description = "Existing S3 bucket for ALB access logs (its policy must allow the ELB log delivery principal). Empty disables access logs."
  type        = string
  default     = ""
}

variable "alb_idle_timeout" {
  description = "ALB idle timeout, seconds."
  type        = number
  default     = 60
}

# ---------------------------------------------------------------- images

variable "stack_image" {
  description = "Full image URI for peakload-stack. Empty means <created ECR repository>:<image_tag>."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag used with the created ECR repositories when stack_image is empty."
  type        = string
  default     = "latest"
}

# ---------------------------------------------------------------- ECS

variable "api_cpu" {
  description = "Fargate CPU units for one API task."
  type        = number
  default     = 512
}

variable "api_memory" {
  description = "Fargate memory (MiB) for one API task."
  type        = number
  default     = 1024
}

variable "worker_cpu" {
  description = "Fargate CPU units for one worker task."
  type        = number
  default     = 256
}

variable "worker_memory" {
  description = "Fargate memory (MiB) for one worker task."
  type        = number
  default     = 512
}

variable "api_min_count" {
  description = "Minimum API tasks."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "Maximum API tasks."
  type        = number
  default     = 20
}

variable "worker_min_count" {
  description = "Minimum worker tasks."
  type        = number
  default     = 1
}

variable "worker_max_count" {
  description = "Maximum worker tasks."
  type        = number
  default     = 10
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation for target-tracking autoscaling of both services."
  type        = number
  default     = 70
}

variable "worker_backlog_per_task_target" {
  description = "Target visible notification messages per running worker task (backlog target tracking)."
  type        = number
  default     = 100
}

variable "scale_in_cooldown" {
  description = "Seconds after a scale-in before another one."
  type        = number
  default     = 120
}

variable "scale_out_cooldown" {
  description = "Seconds after a scale-out before another one."
  type        = number
  default     = 30
}

variable "enable_admin_faults" {
  description = "Give the stack an admin token so POST /admin/faults works (fault injection for testing the diagnosis)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- SQS

variable "sqs_visibility_timeout" {
  description = "Visibility timeout (s) of the work queues; longer than one delivery attempt."
  type        = number
  default     = 60
}

variable "sqs_max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue."
  type        = number
  default     = 5
}

# ---------------------------------------------------------------- RDS

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_engine_version" {
  description = "MySQL engine version."
  type        = string
  default     = "8.0"
}

variable "db_allocated_storage" {
  description = "Initial storage, GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling, GiB."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Database name."
  type        = string
  default     = "peakload"
}

variable "db_username" {
  description = "Master user name (the password is generated and kept by RDS in Secrets Manager)."
  type        = string
  default     = "peakload"
}

variable "db_multi_az" {
  description = "Multi-AZ RDS deployment."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Deletion protection on the RDS instance."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Automated backup retention, days."
  type        = number
  default     = 7
}

variable "db_skip_final_snapshot" {
  description = "Skip the final snapshot on destroy (only for throw-away test stacks)."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------- observability

variable "log_retention_days" {
  description = "CloudWatch Logs retention, days."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Existing KMS key ARN for logs, SQS, DynamoDB, RDS, secrets and ECR. Empty creates one."
  type        = string
  default     = ""
}

variable "alarm_sns_topic_arn" {
  description = "Existing SNS topic for alarm notifications. Empty creates an encrypted topic."
  type        = string
  default     = ""
}

variable "alarm_queue_depth_threshold" {
  description = "Alarm when visible notification messages exceed this."
  type        = number
  default     = 1000
}

variable "alarm_oldest_message_age_seconds" {
  description = "Alarm when the oldest notification message is older than this (s)."
  type        = number
  default     = 300
}

variable "alarm_p99_latency_seconds" {
  description = "Alarm when ALB target p99 response time exceeds this (s)."
  type        = number
  default     = 1
}

variable "alarm_5xx_rate_percent" {
  description = "Alarm when 5xx responses exceed this percentage of requests."
  type        = number
  default     = 1
}
